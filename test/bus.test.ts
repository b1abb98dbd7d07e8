import net from 'node:net';
import Redis from 'ioredis';
import pino, { type Logger } from 'pino';
import { BusUnavailableError, RedisBus, redactRedisUrl } from '../src/bus/redis-bus';
import { MemoryBus } from '../src/bus/memory-bus';
import type { Bus } from '../src/bus/types';
import { decodeBusPayload, encodeBusPayload } from '../src/bus/wire';
import type { BusMessage } from '../src/events/types';
import { Metrics } from '../src/metrics/metrics';
import { startRedisServer, type RedisServer } from '../harness/redis-server';
import { waitFor } from '../harness/wait';

/** A pino logger whose JSON lines are kept for assertions. */
function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  return { logger, lines };
}

function collect(bus: Bus): BusMessage[] {
  const received: BusMessage[] = [];
  bus.onMessage((message) => received.push(message));
  return received;
}

function comment(stream: string, seq: number, text = `comment ${seq}`): BusMessage {
  return {
    stream,
    seq,
    type: 'new_comment',
    data: JSON.stringify({ type: 'new_comment', track_id: stream.slice(6), body: text }),
  };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address ? address.port : 0;
}

describe('bus wire format', () => {
  const cases: BusMessage[] = [
    comment('track:1', 1),
    { stream: 'user:42', seq: 9007199254740991, type: 'mention', data: '{"type":"mention"}' },
    {
      stream: 'track:7',
      seq: null,
      type: 'user_typing',
      data: JSON.stringify({ type: 'user_typing', track_id: '7', user: 'zoë 🎧' }),
    },
    // Raw newlines and separators-lookalikes inside data survive: only the first two \n split.
    { stream: 'track:7', seq: 3, type: 'comment_edited', data: '{"a":"x\ny\n\n7\nmention\n"}\n' },
    { stream: 'track:7', seq: 4, type: 'comment_deleted', data: '"日本語 \u2028 \\u0000 ✓"' },
  ];

  it.each(cases.map((message) => [message.type, message.seq, message]))(
    'round-trips %s (seq %s)',
    (_type, _seq, message) => {
      const payload = encodeBusPayload(message as BusMessage);
      expect(decodeBusPayload((message as BusMessage).stream, payload)).toEqual(message);
    },
  );

  it('carries data verbatim after a compact header', () => {
    expect(encodeBusPayload(comment('track:1', 12, 'hi'))).toBe(
      '12\nnew_comment\n{"type":"new_comment","track_id":"1","body":"hi"}',
    );
  });

  it.each([
    ['no separators', '{"type":"new_comment"}'],
    ['one separator', '1\nnew_comment'],
    ['unknown type', '1\nnot_a_type\n{}'],
    ['non-numeric seq', 'x1\nnew_comment\n{}'],
    ['negative seq', '-1\nnew_comment\n{}'],
    ['leading zero seq', '01\nnew_comment\n{}'],
    ['unsafe seq', '99999999999999999\nnew_comment\n{}'],
    ['empty data', '1\nnew_comment\n'],
  ])('rejects %s', (_what, payload) => {
    expect(decodeBusPayload('track:1', payload)).toBeNull();
  });
});

describe('redactRedisUrl', () => {
  it('hides the password', () => {
    const redacted = redactRedisUrl('redis://user:hunter2@example.com:6380/1');
    expect(redacted).not.toContain('hunter2');
    expect(redacted).toBe('redis://user:***@example.com:6380/1');
  });
});

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.stop();
});

interface Replicas {
  a: Bus;
  b: Bus;
  close(): Promise<void>;
}

const transports: [string, () => Promise<Replicas>][] = [
  [
    'MemoryBus',
    async () => {
      const bus = new MemoryBus();
      return { a: bus, b: bus, close: () => bus.close() };
    },
  ],
  [
    'RedisBus',
    async () => {
      const { logger } = captureLogger();
      const a = await RedisBus.connect({ url: redis.url, logger });
      const b = await RedisBus.connect({ url: redis.url, logger });
      return { a, b, close: async () => void (await Promise.all([a.close(), b.close()])) };
    },
  ],
];

describe.each(transports)('%s between two replicas', (_name, makeReplicas) => {
  let replicas: Replicas;
  beforeEach(async () => {
    replicas = await makeReplicas();
  });
  afterEach(async () => {
    await replicas.close();
  });

  it('delivers a message to a replica subscribed to its stream', async () => {
    const { a, b } = replicas;
    const received = collect(b);
    await b.subscribe('track:1');
    const sent = comment('track:1', 1);
    await a.publish(sent);
    await waitFor(() => received.length === 1, { what: 'delivery' });
    expect(received[0]).toEqual(sent);
  });

  it('does not deliver streams the replica did not subscribe', async () => {
    const { a, b } = replicas;
    const received = collect(b);
    await b.subscribe('track:marker');
    await a.publish(comment('track:1', 1));
    await a.publish(comment('track:marker', 1));
    // Same publisher, same subscriber connection: the marker arrives after anything published first.
    await waitFor(() => received.some((m) => m.stream === 'track:marker'), { what: 'marker' });
    expect(received.map((m) => m.stream)).toEqual(['track:marker']);
  });

  it('stops delivering after unsubscribe', async () => {
    const { a, b } = replicas;
    const received = collect(b);
    await b.subscribe('track:1');
    await b.subscribe('track:marker');
    await a.publish(comment('track:1', 1));
    await waitFor(() => received.length === 1, { what: 'first delivery' });
    await b.unsubscribe('track:1');
    await b.unsubscribe('track:1'); // idempotent
    await a.publish(comment('track:1', 2));
    await a.publish(comment('track:marker', 1));
    await waitFor(() => received.some((m) => m.stream === 'track:marker'), { what: 'marker' });
    expect(received.map((m) => `${m.stream}#${m.seq}`)).toEqual(['track:1#1', 'track:marker#1']);
  });

  it('ends interleaved subscribe/unsubscribe calls in the state of the last call', async () => {
    const { a, b } = replicas;
    const received = collect(b);
    await Promise.all([
      b.subscribe('track:on'),
      b.unsubscribe('track:on'),
      b.subscribe('track:on'),
      b.subscribe('track:off'),
      b.subscribe('track:off'),
      b.unsubscribe('track:off'),
      b.subscribe('track:marker'),
    ]);
    await a.publish(comment('track:off', 1));
    await a.publish(comment('track:on', 1));
    await a.publish(comment('track:marker', 1));
    await waitFor(() => received.some((m) => m.stream === 'track:marker'), { what: 'marker' });
    expect(received.map((m) => m.stream)).toEqual(['track:on', 'track:marker']);
  });

  it('preserves publish order for a burst of 500 messages', async () => {
    const { a, b } = replicas;
    const received = collect(b);
    await b.subscribe('track:burst');
    const sent = Array.from({ length: 500 }, (_, i) => comment('track:burst', i + 1));
    await Promise.all(sent.map((message) => a.publish(message)));
    await waitFor(() => received.length === 500, { what: '500 deliveries' });
    expect(received.map((m) => m.seq)).toEqual(sent.map((m) => m.seq));
    expect(received).toEqual(sent);
  });

  it('round-trips ephemeral messages (seq null) with unicode and newlines', async () => {
    const { a, b } = replicas;
    const received = collect(b);
    await b.subscribe('track:9');
    const typing: BusMessage = {
      stream: 'track:9',
      seq: null,
      type: 'user_typing',
      data: JSON.stringify({ type: 'user_typing', track_id: '9', user: 'Zoë\n🎧' }) + '\n',
    };
    await a.publish(typing);
    await waitFor(() => received.length === 1, { what: 'delivery' });
    expect(received[0]).toEqual(typing);
  });

  it('reports healthy while connected and unhealthy after close', async () => {
    const { a, b } = replicas;
    expect(await a.isHealthy()).toBe(true);
    expect(await b.isHealthy()).toBe(true);
    await replicas.close();
    expect(await a.isHealthy()).toBe(false);
    await expect(a.publish(comment('track:1', 1))).rejects.toThrow();
  });
});

describe('RedisBus', () => {
  it('survives a Redis outage: publish fails fast, then reconnects and resubscribes', async () => {
    const server = await startRedisServer();
    const metricsA = new Metrics();
    const metricsB = new Metrics();
    const { logger, lines } = captureLogger();
    let a: RedisBus | undefined;
    let b: RedisBus | undefined;
    try {
      a = await RedisBus.connect({ url: server.url, logger, metrics: metricsA });
      // B's handler is registered before its first connect, which must not count as a reconnect.
      b = new RedisBus({ url: server.url, logger, metrics: metricsB });
      const busA = a;
      const busB = b;
      const reconnects = { a: 0, b: 0 };
      busA.onReconnect(() => reconnects.a++);
      busB.onReconnect(() => reconnects.b++);
      const received = collect(busB);
      await waitFor(() => busB.isHealthy(), { what: 'B connected' });
      await busB.subscribe('track:1');
      await busA.publish(comment('track:1', 1));
      await waitFor(() => received.length === 1, { what: 'delivery before the outage' });
      expect(reconnects).toEqual({ a: 0, b: 0 }); // the first connect is not a reconnect

      await server.stop();
      const stoppedAt = Date.now();
      // Whether or not the client has noticed the closed socket yet, publish rejects promptly.
      await expect(busA.publish(comment('track:1', 2))).rejects.toBeInstanceOf(BusUnavailableError);
      await expect(busA.publish(comment('track:1', 3))).rejects.toBeInstanceOf(BusUnavailableError);
      expect(Date.now() - stoppedAt).toBeLessThan(1000);
      expect(await busA.isHealthy()).toBe(false);
      expect(await busB.isHealthy()).toBe(false);
      // Asked for while down: applied when Redis is back.
      await busB.subscribe('track:2');
      await waitFor(() => lines.some((l) => l.includes('Redis bus connection')), {
        what: 'outage logged',
      });

      await server.start();
      await waitFor(() => reconnects.a === 1 && reconnects.b === 1, {
        what: 'onReconnect on both',
        timeoutMs: 10_000,
      });
      // The publishing connections reconnect on their own backoff schedule.
      await waitFor(() => busA.isHealthy(), { what: 'A healthy', timeoutMs: 10_000 });
      await waitFor(() => busB.isHealthy(), { what: 'B healthy', timeoutMs: 10_000 });
      expect((await metricsB.busReconnects.get()).values[0]?.value).toBe(1);
      expect((await metricsA.busReconnects.get()).values[0]?.value).toBe(1);

      await busA.publish(comment('track:1', 4));
      await busA.publish(comment('track:2', 1));
      await waitFor(() => received.length === 3, { what: 'deliveries after the outage' });
      expect(received.map((m) => `${m.stream}#${m.seq}`)).toEqual([
        'track:1#1',
        'track:1#4',
        'track:2#1',
      ]);
      expect(reconnects).toEqual({ a: 1, b: 1 });
    } finally {
      await Promise.all([a?.close(), b?.close()]);
      await server.stop();
    }
  });

  it('ignores undecodable messages with a warning and keeps delivering', async () => {
    const { logger, lines } = captureLogger();
    const bus = await RedisBus.connect({ url: redis.url, logger, channelPrefix: 'junk:' });
    const raw = new Redis(redis.url);
    try {
      const received = collect(bus);
      await bus.subscribe('track:1');
      await raw.publish('junk:track:1', 'not a bus message');
      await raw.publish('junk:track:1', 'neither is this');
      await bus.publish(comment('track:1', 1));
      await waitFor(() => received.length === 1, { what: 'the valid message' });
      expect(received[0]).toEqual(comment('track:1', 1));
      const warnings = lines.filter((l) => l.includes('ignored undecodable bus message'));
      expect(warnings).toHaveLength(1); // the second one is rate-limited
      expect(JSON.parse(warnings[0] ?? '{}')).toMatchObject({ level: 40, channel: 'junk:track:1' });
    } finally {
      raw.disconnect();
      await bus.close();
    }
  });

  it('sends publishes issued together in one write, before the caller resumes, in order, each confirmed', async () => {
    const { logger } = captureLogger();
    const publisher = await RedisBus.connect({ url: redis.url, logger });
    const subscriber = await RedisBus.connect({ url: redis.url, logger });
    try {
      const received = collect(subscriber);
      await subscriber.subscribe('track:9');
      await subscriber.subscribe('user:9');
      const socket = (publisher as unknown as { pub: Redis }).pub.stream;
      expect(socket.writableCorked).toBe(0);
      const sent = [comment('track:9', 1), { ...comment('user:9', 1), type: 'mention' as const }];
      const confirmed = Promise.all(sent.map((m) => publisher.publish(m)));
      // Held back while the caller's synchronous code runs, then written together ...
      expect(socket.writableCorked).toBe(1);
      // ... before the caller's next await resumes (a request answers only after an await:
      // the events are on the wire before its response).
      await Promise.resolve();
      expect(socket.writableCorked).toBe(0);
      await confirmed;
      await publisher.publish(comment('track:9', 2));
      await waitFor(() => received.length === 3, { what: 'all three messages' });
      expect(received.map((m) => `${m.stream}#${m.seq}`)).toEqual([
        'track:9#1',
        'user:9#1',
        'track:9#2',
      ]);
    } finally {
      await Promise.all([publisher.close(), subscriber.close()]);
    }
  });

  it('connect() rejects within its timeout when Redis is unreachable, without leaking the password', async () => {
    const { logger, lines } = captureLogger();
    const port = await freePort();
    const url = `redis://:s3cret-pass@127.0.0.1:${port}`;
    const startedAt = Date.now();
    const failure = await RedisBus.connect({ url, logger, timeoutMs: 800 }).then(
      () => new Error('connected unexpectedly'),
      (err: Error) => err,
    );
    expect(Date.now() - startedAt).toBeLessThan(2000);
    expect(failure.message).toContain(`no connection to redis://:***@127.0.0.1:${port}`);
    expect(failure.message).toContain('ECONNREFUSED');
    expect(failure.message).not.toContain('s3cret-pass');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('')).not.toContain('s3cret-pass');
  });

  it('a bus constructed while Redis is down logs, rejects publish, then catches up once it is up', async () => {
    const server = await startRedisServer();
    await server.stop();
    const { logger, lines } = captureLogger();
    const metrics = new Metrics();
    const bus = new RedisBus({ url: server.url, logger, metrics });
    let publisher: RedisBus | undefined;
    try {
      let reconnects = 0;
      bus.onReconnect(() => reconnects++);
      const received = collect(bus);
      await waitFor(() => lines.some((l) => l.includes('Redis bus connection error')), {
        what: 'error log',
      });
      await expect(bus.publish(comment('track:1', 1))).rejects.toBeInstanceOf(BusUnavailableError);
      expect(await bus.isHealthy()).toBe(false);
      // Resolves at once; applied on connect, followed by onReconnect so the hub catches up.
      await expect(bus.subscribe('track:1')).resolves.toBeUndefined();

      await server.start();
      await waitFor(() => reconnects === 1, {
        what: 'onReconnect after the first connect',
        timeoutMs: 10_000,
      });
      publisher = await RedisBus.connect({ url: server.url, logger });
      await publisher.publish(comment('track:1', 2));
      await waitFor(() => received.length === 1, { what: 'delivery' });
      expect(received[0]).toEqual(comment('track:1', 2));
      // Not a reconnect after an outage of a working bus.
      expect((await metrics.busReconnects.get()).values[0]?.value ?? 0).toBe(0);
    } finally {
      await Promise.all([bus.close(), publisher?.close()]);
      await server.stop();
    }
  });

  it('close() quits both connections', async () => {
    const { logger } = captureLogger();
    const bus = await RedisBus.connect({ url: redis.url, logger });
    const raw = new Redis(redis.url);
    try {
      const busClients = async () =>
        ((await raw.client('LIST')) as string)
          .split('\n')
          .filter((line) => /name=tc-bus-(pub|sub) /.test(line)).length;
      expect(await busClients()).toBe(2);
      await bus.close();
      await waitFor(async () => (await busClients()) === 0, { what: 'connections closed' });
    } finally {
      raw.disconnect();
    }
  });
});
