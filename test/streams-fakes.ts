import { EventEmitter } from 'node:events';
import pino from 'pino';
import type { ChannelHost, StreamChannel } from '../src/streams/channel';
import { BatchedHeadReads } from '../src/streams/head-reads';
import { Replay } from '../src/streams/replay';
import type { SessionSocket, StreamSession } from '../src/streams/session';
import { Metrics } from '../src/metrics/metrics';
import type { FakeBus, FakeEventLog } from './support/fakes';

/**
 * Stand-ins for the unit tests of the stream pieces (session, channel, replay): a socket that
 * records what is written, and a channel host wired to the in-memory bus and event log.
 */

/** Records writes; `writableLength` is set by the test to simulate a client that does not read. */
export class FakeSocket extends EventEmitter {
  writableLength = 0;
  writableFinished = false;
  readonly written: string[] = [];
  endCalls = 0;
  destroyed = false;

  write(data: Buffer | string): boolean {
    this.written.push(data.toString());
    return true;
  }

  end(): this {
    this.endCalls++;
    return this;
  }

  destroy(): this {
    this.destroyed = true;
    return this;
  }

  /** Everything written, as one string. */
  text(): string {
    return this.written.join('');
  }

  /** Ids of the SSE events written, in order. */
  ids(): number[] {
    return [...this.text().matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  }

  /** Names of the SSE events written, in order. */
  events(): string[] {
    return [...this.text().matchAll(/^event: (\S+)$/gm)].map((m) => m[1]!);
  }
}

export const asSocket = (s: FakeSocket): SessionSocket => s as unknown as SessionSocket;

export interface TestHost extends ChannelHost {
  metrics: Metrics;
  dropped: StreamSession[];
  failedChannels: StreamChannel[];
}

/** A channel host over the fake bus and log; records slow drops and failed channels. */
export function testHost(
  bus: FakeBus,
  log: FakeEventLog,
  opts: { maxBufferBytes?: number } = {},
): TestHost {
  const metrics = new Metrics();
  const heads = new BatchedHeadReads(log);
  const maxBufferBytes = opts.maxBufferBytes ?? 1024 * 1024;
  const dropped: StreamSession[] = [];
  const failedChannels: StreamChannel[] = [];
  return {
    log,
    heads,
    metrics,
    logger: pino({ level: 'silent' }),
    replay: new Replay({ log, heads, metrics, maxBufferBytes }),
    maxBufferBytes,
    subscribe: (stream) => bus.subscribe(stream),
    dropSlow: (session) => {
      dropped.push(session);
      session.destroy();
      session.channel.live.delete(session);
    },
    failed: (channel) => {
      failedChannels.push(channel);
      channel.close();
    },
    dropped,
    failedChannels,
  };
}

export const counterValue = async (metric: {
  get(): Promise<{ values: { value: number; labels: object }[] }>;
}): Promise<number> => (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
