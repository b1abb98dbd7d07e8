/**
 * Resume (contract section 5) against retention pruning and big histories, on the stream hub
 * with a fake event log and bus over a real node:http server:
 *  - a resume that races pruning (between reading the head and reading the log) gets `reset`,
 *    never a silent gap;
 *  - a replay is written in batches bounded in bytes, each waiting for the socket to drain.
 * storedBatches (src/streams/replay-batches.ts), which cuts the batches, is tested directly too.
 */
import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import pino from 'pino';
import { Metrics } from '../src/metrics/metrics';
import type { StoredEvent, StoredEventData, StreamHeadInfo } from '../src/events/types';
import { StreamHub, type StreamHubOptions } from '../src/streams/hub';
import { GAP, storedBatches } from '../src/streams/replay-batches';
import { FakeBus, FakeEventLog } from './support/fakes';
import { waitFor } from '../harness/wait';
import { openSse, type SseClient } from './support/sse-client';

const STREAM = 'track:t1';

/** A log whose retention pruning runs right after the next heads read: the race, made certain. */
class PruningLog extends FakeEventLog {
  pruneAfterNextHeads: Date | null = null;

  override async heads(streams: string[]): Promise<Map<string, StreamHeadInfo>> {
    const heads = await super.heads(streams);
    if (this.pruneAfterNextHeads) {
      await this.pruneBefore(this.pruneAfterNextHeads);
      this.pruneAfterNextHeads = null;
    }
    return heads;
  }
}

interface Harness {
  hub: StreamHub;
  bus: FakeBus;
  log: PruningLog;
  metrics: Metrics;
  url: string;
  /** Every write the hub made on a server-side connection: its size and the unsent bytes after it. */
  writes: { bytes: number; unsentAfter: number }[];
  serverSockets: net.Socket[];
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function startHub(overrides: Partial<StreamHubOptions> = {}): Promise<Harness> {
  const bus = new FakeBus();
  const log = new PruningLog();
  const metrics = new Metrics();
  const hub = new StreamHub({
    bus,
    log,
    logger: pino({ level: 'silent' }),
    metrics,
    heartbeatMs: 60_000,
    retryMs: 2000,
    maxBufferBytes: 1024 * 1024,
    maxStreamsPerUser: 20,
    maxStreamsPerReplica: 1000,
    ...overrides,
  });
  const writes: Harness['writes'] = [];
  const serverSockets: net.Socket[] = [];
  const server = http.createServer((req, res) => {
    const header = req.headers['last-event-id'];
    void hub.open(req, res, {
      stream: STREAM,
      kind: 'track',
      trackId: 't1',
      userId: 1,
      lastEventId: typeof header === 'string' ? header : undefined,
    });
  });
  server.on('connection', (socket: net.Socket) => {
    serverSockets.push(socket);
    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
    socket.write = ((chunk: string | Buffer, ...rest: unknown[]) => {
      const ok = write(chunk, ...rest);
      writes.push({ bytes: Buffer.byteLength(chunk), unsentAfter: socket.writableLength });
      return ok;
    }) as typeof socket.write;
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tracks/t1/events`;
  cleanups.push(async () => {
    hub.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return { hub, bus, log, metrics, url, writes, serverSockets };
}

async function open(h: Harness, lastEventId?: string): Promise<SseClient> {
  const c = await openSse(h.url, { lastEventId });
  cleanups.push(() => c.close());
  return c;
}

const ids = (c: SseClient) => c.storedEvents().map((e) => Number(e.id));
const names = (c: SseClient) =>
  c.events().map((e) => (e.id === undefined ? e.event : `${e.event}#${e.id}`));

/** Ten events created at 1001 … 1010 (epoch ms: long past the retention). */
function tenOldEvents(log: FakeEventLog): void {
  for (let i = 1; i <= 10; i++) log.append(STREAM, 'new_comment', {}, 1000 + i);
}

describe('a resume that races retention pruning', () => {
  test('events pruned between the head read and the log read: reset, not a silent gap', async () => {
    const h = await startHub();
    tenOldEvents(h.log);
    // The head still says 1 … 10 are retained; then 1 … 6 are pruned before the log is read.
    h.log.pruneAfterNextHeads = new Date(1007);
    const c = await open(h, '3');
    const reset = await c.waitForEvent((e) => e.event === 'reset');
    expect(reset.data).toEqual({ type: 'reset', track_id: 't1', reason: 'history_expired' });
    // Live events follow the reset, and nothing was replayed past the hole.
    const live = h.log.append(STREAM, 'new_comment');
    await waitFor(() => h.bus.subscribed.has(STREAM));
    h.bus.deliverEvent(live);
    await c.waitForEvent((e) => e.id === String(live.seq));
    expect(names(c)).toEqual(['connected', 'reset', `new_comment#${live.seq}`]);
  });

  test('every event up to the head pruned meanwhile: reset', async () => {
    const h = await startHub();
    tenOldEvents(h.log);
    h.log.pruneAfterNextHeads = new Date(5000);
    const c = await open(h, '3');
    await c.waitForEvent((e) => e.event === 'reset');
    expect(ids(c)).toEqual([]);
  });

  test('without pruning the resume continues exactly after Last-Event-ID', async () => {
    const h = await startHub();
    tenOldEvents(h.log);
    const c = await open(h, '3');
    await c.waitForEvent((e) => e.id === '10');
    expect(names(c)).toEqual([
      'connected',
      ...[4, 5, 6, 7, 8, 9, 10].map((n) => `new_comment#${n}`),
    ]);
  });
});

describe('after a reset, every event committed once the client saw it is delivered', () => {
  test.each([
    ['a nonsense Last-Event-ID', 'abc', false],
    ['a resume that raced pruning', '3', true],
  ])('%s', async (_name, lastEventId, prune) => {
    const h = await startHub();
    tenOldEvents(h.log);
    if (prune) h.log.pruneAfterNextHeads = new Date(1007);
    // The stream's first subscriber: joining it reads the head, slowly.
    h.log.readDelayMs = 300;
    const c = await open(h, lastEventId);
    await c.waitForEvent((e) => e.event === 'reset');
    // Committed after the client saw `reset` (which tells it to refetch over REST, then
    // rely on the stream): it must arrive.
    const next = h.log.append(STREAM, 'comment_edited');
    await waitFor(() => h.bus.subscribed.has(STREAM));
    h.bus.deliverEvent(next);
    await c.waitForEvent((e) => e.id === String(next.seq));
    expect(names(c)).toEqual(['connected', 'reset', `comment_edited#${next.seq}`]);
  });
});

describe('replay written in batches bounded in bytes', () => {
  /** 500 events of ~16 KB: about 8 MB, which used to go out in one write. */
  function bigHistory(log: FakeEventLog): void {
    const pad = 'x'.repeat(16_000);
    for (let i = 0; i < 500; i++) log.append(STREAM, 'mention', { pad });
  }

  test('each write stays within the byte budget and everything arrives in order', async () => {
    const h = await startHub();
    bigHistory(h.log);
    const c = await open(h, '0');
    await c.waitForEvent((e) => e.id === '500', 30_000);
    expect(ids(c)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(Math.max(...h.writes.map((w) => w.bytes))).toBeLessThanOrEqual(64 * 1024);
  });

  test('a client that stops reading: the replay waits for the socket instead of piling up', async () => {
    // Budget: half of the buffer bound, 32 KB per write; more than 64 KB unsent is "slow".
    const h = await startHub({ maxBufferBytes: 64 * 1024 });
    bigHistory(h.log);
    const c = await open(h, '0');
    c.res.pause();
    // Let the kernel buffers fill until the hub has to wait (or the whole replay fits in them).
    const totalBytes = () => h.writes.reduce((n, w) => n + w.bytes, 0);
    await waitFor(() => (h.serverSockets[0]?.writableLength ?? 0) > 0 || totalBytes() > 8_000_000, {
      timeoutMs: 20_000,
      what: 'the replay to fill the connection',
    });
    c.res.resume();
    await c.waitForEvent((e) => e.id === '500', 30_000);
    expect(ids(c)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(Math.max(...h.writes.map((w) => w.bytes))).toBeLessThanOrEqual(32 * 1024);
    expect(Math.max(...h.writes.map((w) => w.unsentAfter))).toBeLessThanOrEqual(64 * 1024);
    expect((await h.metrics.slowSubscriberDisconnects.get()).values[0]?.value ?? 0).toBe(0);
  });
});

describe('storedBatches', () => {
  const event = (seq: number, size = 10): StoredEvent => ({
    stream: STREAM,
    seq,
    type: 'new_comment',
    // A stand-in payload of a chosen size: storedBatches never looks inside `data`.
    data: {
      type: 'new_comment',
      track_id: 't1',
      pad: 'y'.repeat(size),
    } as unknown as StoredEventData,
  });
  const run = (events: StoredEvent[], after: number, upTo: number, maxBytes = 1 << 20) => [
    ...storedBatches(events, after, upTo, maxBytes),
  ];
  const seqsOf = (text: string) => [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));

  test('skips what was sent, stops at upTo', () => {
    const out = run(
      [2, 3, 4, 5, 6].map((s) => event(s)),
      3,
      5,
    );
    expect(out).toHaveLength(1);
    expect(out[0] !== GAP && seqsOf(out[0]!.text)).toEqual([4, 5]);
  });

  test('a first seq that is not after + 1 is a gap, before anything is written', () => {
    expect(run([event(7), event(8)], 3, 10)).toEqual([GAP]);
  });

  test('nothing new below upTo is a gap; nothing to do is not', () => {
    expect(run([], 3, 10)).toEqual([GAP]);
    expect(run([], 10, 10)).toEqual([]);
  });

  test('a hole further on: the run before it, then the gap', () => {
    const out = run(
      [4, 5, 7].map((s) => event(s)),
      3,
      10,
    );
    expect(out).toHaveLength(2);
    expect(out[0] !== GAP && seqsOf(out[0]!.text)).toEqual([4, 5]);
    expect(out[1]).toBe(GAP);
  });

  test('a read that ends before upTo without a hole is not a gap (the caller reads on)', () => {
    const out = run(
      [4, 5].map((s) => event(s)),
      3,
      10,
    );
    expect(out.filter((b) => b === GAP)).toEqual([]);
  });

  test('property: batches carry exactly the unbroken run, each within the budget', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 80 }), { maxLength: 60 }),
        fc.integer({ min: 0, max: 80 }),
        fc.integer({ min: 0, max: 90 }),
        fc.integer({ min: 1, max: 4000 }),
        fc.integer({ min: 200, max: 5000 }),
        (seqs, after, upTo, size, maxBytes) => {
          const events = seqs.sort((a, b) => a - b).map((s) => event(s, size % 1500));
          const out = run(events, after, upTo, maxBytes);
          const batches = out.filter((b) => b !== GAP);
          // The run the client may get: after + 1, after + 2, … as long as they exist, ≤ upTo.
          const present = new Set(seqs);
          const expected: number[] = [];
          for (let s = after + 1; s <= upTo && present.has(s); s++) expected.push(s);
          const sent = batches.flatMap((b) => seqsOf(b.text));
          expect(sent).toEqual(expected);
          for (const b of batches) {
            const bytes = Buffer.byteLength(b.text);
            if (seqsOf(b.text).length > 1) expect(bytes).toBeLessThanOrEqual(maxBytes);
            expect(b.lastSeq).toBe(seqsOf(b.text).at(-1));
            expect(b.types).toHaveLength(seqsOf(b.text).length);
          }
          const last = expected.at(-1) ?? after;
          const gapExpected = last < upTo && (expected.length === 0 || seqs.some((s) => s > last));
          expect(out.at(-1) === GAP).toBe(gapExpected);
          expect(out.filter((b) => b === GAP).length).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 300 },
    );
  });
});
