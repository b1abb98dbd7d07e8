import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { EventSource } from 'eventsource';
import { StreamHub, type StreamHubOptions } from '../src/streams/hub';
import { Metrics } from '../src/metrics/metrics';
import { trackStream, userStream } from '../src/events/types';
import { userTypingData } from '../src/events/builders';
import { FakeBus, FakeEventLog } from './support/fakes';
import { SseParser, type SseBlock } from './support/sse-parser';
import { waitFor } from '../harness/wait';

// ---------------------------------------------------------------- helpers

/** A minimal SSE reader over node:http that keeps the raw text for exact assertions. */
class RawSseClient {
  raw = '';
  readonly events: SseBlock[] = [];
  readonly comments: string[] = [];
  retry: number | undefined;
  ended = false;
  /** When the first comment line (a ping) arrived. */
  firstCommentAt: number | undefined;
  private readonly parser = new SseParser({
    onEvent: (block) => this.events.push(block),
    onComment: (text) => {
      this.firstCommentAt ??= performance.now();
      this.comments.push(text);
    },
    onRetry: (ms) => (this.retry = ms),
  });

  private constructor(
    readonly req: http.ClientRequest,
    readonly res: http.IncomingMessage,
  ) {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => this.onText(chunk));
    res.on('end', () => (this.ended = true));
    res.on('close', () => (this.ended = true));
    res.on('error', () => (this.ended = true));
  }

  static open(url: string, headers: Record<string, string> = {}): Promise<RawSseClient> {
    return new Promise((resolve, reject) => {
      const req = http.get(url, { headers: { Accept: 'text/event-stream', ...headers } }, (res) =>
        resolve(new RawSseClient(req, res)),
      );
      req.on('error', reject);
    });
  }

  private onText(chunk: string): void {
    this.raw += chunk;
    this.parser.push(chunk);
  }

  ofType(type: string): SseBlock[] {
    return this.events.filter((e) => e.event === type);
  }

  /** Ids of the stored events received, in arrival order. */
  ids(): number[] {
    return this.events.filter((e) => e.id !== undefined).map((e) => Number(e.id));
  }

  close(): void {
    this.req.destroy();
  }
}

interface Harness {
  hub: StreamHub;
  bus: FakeBus;
  log: FakeEventLog;
  metrics: Metrics;
  journal: string[];
  base: string;
  port: number;
  /** Streams whose open() resolved (joined live or refused). */
  joined: () => number;
  serverSockets: Set<net.Socket>;
  client: (path: string, headers?: Record<string, string>) => Promise<RawSseClient>;
  /** Opens and waits until the stream is live on the hub. */
  liveClient: (path: string, headers?: Record<string, string>) => Promise<RawSseClient>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function startHub(overrides: Partial<StreamHubOptions> = {}): Promise<Harness> {
  const journal: string[] = [];
  const bus = new FakeBus(journal);
  const log = new FakeEventLog(journal);
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
  let joined = 0;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const userId = Number(url.searchParams.get('user') ?? '1');
    const header = req.headers['last-event-id'];
    const lastEventId =
      typeof header === 'string' ? header : (url.searchParams.get('last_event_id') ?? undefined);
    const track = /^\/tracks\/([^/]+)\/events$/.exec(url.pathname);
    const target = track
      ? {
          stream: trackStream(track[1]!),
          kind: 'track' as const,
          trackId: track[1]!,
          userId,
          lastEventId,
        }
      : { stream: userStream(userId), kind: 'user' as const, trackId: null, userId, lastEventId };
    void hub.open(req, res, target).then(() => joined++);
  });
  const serverSockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    serverSockets.add(s);
    s.on('close', () => serverSockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  const clients: RawSseClient[] = [];
  cleanups.push(async () => {
    for (const c of clients) c.close();
    hub.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const client = async (path: string, headers?: Record<string, string>) => {
    const c = await RawSseClient.open(base + path, headers);
    clients.push(c);
    return c;
  };
  const liveClient = async (path: string, headers?: Record<string, string>) => {
    const before = joined;
    const c = await client(path, headers);
    await waitFor(() => joined > before, { what: 'the stream to join live' });
    return c;
  };
  return {
    hub,
    bus,
    log,
    metrics,
    journal,
    base,
    port,
    joined: () => joined,
    serverSockets,
    client,
    liveClient,
  };
}

const counterValue = async (metric: {
  get(): Promise<{ values: { value: number; labels: object }[] }>;
}) => (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);

// ---------------------------------------------------------------- tests

describe('StreamHub', () => {
  test('answers with SSE headers, a retry hint and the connected event first', async () => {
    const h = await startHub({ retryMs: 1500 });
    const c = await h.liveClient('/tracks/t1/events');
    expect(c.res.statusCode).toBe(200);
    expect(c.res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(c.res.headers['cache-control']).toBe('no-cache');
    expect(c.res.headers['x-accel-buffering']).toBe('no');
    expect(c.res.headers['content-length']).toBeUndefined();
    expect(c.res.headers['content-encoding']).toBeUndefined();
    await waitFor(() => c.events.length >= 1, { what: 'connected' });
    expect(c.raw.startsWith('retry: 1500\n\nevent: connected\ndata: {')).toBe(true);
    const connected = JSON.parse(c.events[0]!.data);
    expect(connected).toEqual({
      type: 'connected',
      track_id: 't1',
      message: expect.any(String),
      connection_id: expect.any(String),
    });
    expect(c.events[0]!.id).toBeUndefined();

    const me = await h.liveClient('/me/events?user=7');
    await waitFor(() => me.events.length >= 1, { what: 'connected' });
    expect(JSON.parse(me.events[0]!.data)).toMatchObject({ type: 'connected', track_id: null });
    expect(h.hub.openStreams()).toEqual({ track: 1, user: 1 });
  });

  test('sends a ping comment every heartbeat from one timer', async () => {
    const h = await startHub({ heartbeatMs: 40 });
    const a = await h.liveClient('/tracks/t1/events');
    const b = await h.liveClient('/me/events');
    await waitFor(() => a.comments.length >= 2 && b.comments.length >= 2, {
      what: 'two pings on each stream',
    });
    expect(a.comments[0]).toBe('ping');
    expect(a.raw).toContain('\n: ping\n');
  });

  test('spreads the pings of many streams over the interval instead of one burst', async () => {
    const h = await startHub({ heartbeatMs: 1000 });
    const clients: RawSseClient[] = [];
    for (let i = 0; i < 20; i++) clients.push(await h.liveClient(`/tracks/t${i % 4}/events`));
    await waitFor(() => clients.every((c) => c.firstCommentAt !== undefined), {
      what: 'a ping on every stream',
      timeoutMs: 5000,
    });
    const firsts = clients.map((c) => c.firstCommentAt!);
    // One timer pinging every stream at once puts all first pings within a few ms; groups of
    // 100 ms visited in turn spread them over most of the second.
    expect(Math.max(...firsts) - Math.min(...firsts)).toBeGreaterThanOrEqual(500);
  });

  test('a heartbeat during a slow join never comes before `connected`', async () => {
    const h = await startHub({ heartbeatMs: 15, retryMs: 1500 });
    h.log.readDelayMs = 150; // the join's head read spans several heartbeats
    const c = await h.liveClient('/tracks/t1/events');
    await waitFor(() => c.comments.length >= 1, { what: 'a ping after connected' });
    expect(c.raw.startsWith('retry: 1500\n\nevent: connected\n')).toBe(true);
  });

  test('delivers live events only to the subscribers of that stream, ephemeral ones without id', async () => {
    const h = await startHub();
    const a1 = await h.liveClient('/tracks/a/events');
    const a2 = await h.liveClient('/tracks/a/events?user=2');
    const b = await h.liveClient('/tracks/b/events');
    const evA = h.log.append('track:a', 'new_comment', {
      comment: { id: 1, content: 'hi\nthere' },
    });
    h.bus.deliverEvent(evA);
    await h.hub.publishEphemeral(
      'track:a',
      userTypingData('a', { id: 2, username: 'u2' }, true, 5000),
    );
    const evB = h.log.append('track:b', 'comment_deleted', { comment_id: 9 });
    h.bus.deliverEvent(evB);
    await waitFor(() => a1.events.length >= 3 && a2.events.length >= 3 && b.events.length >= 2, {
      what: 'deliveries',
    });

    for (const c of [a1, a2]) {
      expect(c.events.slice(1).map((e) => [e.id, e.event])).toEqual([
        ['1', 'new_comment'],
        [undefined, 'user_typing'],
      ]);
      expect(JSON.parse(c.events[1]!.data)).toEqual(evA.data);
    }
    expect(a1.raw).toContain(`id: 1\nevent: new_comment\ndata: ${JSON.stringify(evA.data)}\n\n`);
    expect(b.events.slice(1).map((e) => [e.id, e.event])).toEqual([['1', 'comment_deleted']]);
    const delivered = await h.metrics.eventsDelivered.get();
    expect(delivered.values.find((v) => v.labels.type === 'new_comment')?.value).toBe(2);
  });

  test('fills gaps from the log when the bus delivers out of order, and ignores duplicates', async () => {
    const h = await startHub();
    const c = await h.liveClient('/tracks/t/events');
    const evs = [1, 2, 3, 4, 5, 6, 7].map(() => h.log.append('track:t', 'new_comment'));
    // 3 overtakes 1 and 2; 1, 2 and 3 then arrive late (duplicates); 7 overtakes 5 and 6, which never come.
    for (const i of [2, 0, 1, 2, 3, 6, 4, 3]) h.bus.deliverEvent(evs[i]!);
    await waitFor(() => c.ids().length >= 7, { what: 'seven events' });
    await new Promise((r) => setImmediate(r));
    expect(c.ids()).toEqual([1, 2, 3, 4, 5, 6, 7]);

    for (const e of evs) h.bus.deliverEvent(e); // a relay republishing everything
    const ev8 = h.log.append('track:t', 'comment_edited');
    h.bus.deliverEvent(ev8);
    await waitFor(() => c.ids().length >= 8, { what: 'the eighth event' });
    expect(c.ids()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test('subscribes on the bus for the first subscriber before reading the head, unsubscribes after the last', async () => {
    const h = await startHub();
    const a = await h.liveClient('/tracks/s/events');
    expect(h.journal.filter((j) => !j.startsWith('readAfter'))).toEqual([
      'subscribe:track:s',
      'heads:track:s',
    ]);
    const b = await h.liveClient('/tracks/s/events?user=2');
    expect(h.journal.filter((j) => j.startsWith('subscribe'))).toHaveLength(1);
    a.close();
    await waitFor(() => h.hub.openStreams().track === 1, { what: 'one stream left' });
    expect(h.bus.subscribed.has('track:s')).toBe(true);
    b.close();
    await waitFor(() => !h.bus.subscribed.has('track:s'), { what: 'unsubscribe' });
    expect(h.journal[h.journal.length - 1]).toBe('unsubscribe:track:s');
    expect(h.hub.openStreams()).toEqual({ track: 0, user: 0 });
    expect(await counterValue(h.metrics.openStreams)).toBe(0);

    // A new subscriber afterwards subscribes again and gets live events.
    const c = await h.liveClient('/tracks/s/events');
    h.bus.deliverEvent(h.log.append('track:s', 'new_comment'));
    await waitFor(() => c.ids().length === 1, { what: 'live event after resubscribe' });
  });

  test('resumes from Last-Event-ID: exactly (L, head] then live, no gap or duplicate under concurrent writes', async () => {
    const h = await startHub();
    for (let i = 0; i < 30; i++) h.log.append('track:r', 'new_comment');
    const watcher = await h.liveClient('/tracks/r/events'); // keeps the stream live on this replica
    h.log.readDelayMs = 3; // widen the window between replay reads and live delivery

    let producing = true;
    const producer = (async () => {
      let n = 0;
      while (producing && n < 60) {
        const e = h.log.append('track:r', 'new_comment');
        h.bus.deliverEvent(e);
        n++;
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    const header = await h.client('/tracks/r/events', { 'Last-Event-ID': '12' });
    const query = await h.client('/tracks/r/events?last_event_id=25');
    await producer;
    producing = false;
    const last = h.log.append('track:r', 'new_comment');
    h.bus.deliverEvent(last);
    const expectFrom = (from: number) =>
      Array.from({ length: last.seq - from }, (_, i) => from + 1 + i);
    await waitFor(() => header.ids().at(-1) === last.seq && query.ids().at(-1) === last.seq, {
      what: 'all events',
    });
    expect(header.ids()).toEqual(expectFrom(12));
    expect(query.ids()).toEqual(expectFrom(25));
    expect(watcher.ids()).toEqual(expectFrom(30));
    expect(header.ofType('reset')).toHaveLength(0);
    expect(await counterValue(h.metrics.replays)).toBe(2);
  });

  test('a resume that is ahead of what reached this replica keeps ids strictly increasing', async () => {
    const h = await startHub();
    const evs = [1, 2, 3].map(() => h.log.append('track:q', 'new_comment'));
    const first = await h.liveClient('/tracks/q/events');
    const later = [4, 5, 6].map(() => h.log.append('track:q', 'new_comment')); // not on the bus yet
    const resumed = await h.liveClient('/tracks/q/events', { 'Last-Event-ID': '2' });
    for (const e of [...evs, ...later]) h.bus.deliverEvent(e); // late arrivals
    h.bus.deliverEvent(h.log.append('track:q', 'new_comment'));
    await waitFor(() => resumed.ids().at(-1) === 7 && first.ids().at(-1) === 7, {
      what: 'event 7',
    });
    expect(resumed.ids()).toEqual([3, 4, 5, 6, 7]);
    expect(first.ids()).toEqual([4, 5, 6, 7]);
  });

  test.each([
    ['older than retained history', '2', 'history_expired'],
    ['ahead of the head', '999', 'unknown_last_event_id'],
    ['not a number', 'abc', 'invalid_last_event_id'],
    ['negative', '-1', 'invalid_last_event_id'],
    ['fractional', '7.5', 'invalid_last_event_id'],
  ])('sends reset then live events when Last-Event-ID is %s', async (_case, id, reason) => {
    const h = await startHub();
    const old = Date.now() - 60_000;
    for (let i = 0; i < 5; i++) h.log.append('track:x', 'new_comment', {}, old);
    for (let i = 0; i < 5; i++) h.log.append('track:x', 'new_comment');
    await h.log.pruneBefore(new Date(Date.now() - 30_000)); // retains 6..10
    const c = await h.liveClient('/tracks/x/events', { 'Last-Event-ID': id });
    h.bus.deliverEvent(h.log.append('track:x', 'new_comment'));
    await waitFor(() => c.ids().length === 1, { what: 'the live event' });
    expect(c.events.map((e) => e.event)).toEqual(['connected', 'reset', 'new_comment']);
    expect(c.events[1]!.id).toBeUndefined();
    expect(JSON.parse(c.events[1]!.data)).toEqual({ type: 'reset', track_id: 'x', reason });
    expect(c.ids()).toEqual([11]);
    expect(await counterValue(h.metrics.resets)).toBe(1);
  });

  test('the oldest resumable id is retainedFrom - 1', async () => {
    const h = await startHub();
    const old = Date.now() - 60_000;
    for (let i = 0; i < 5; i++) h.log.append('track:x', 'new_comment', {}, old);
    for (let i = 0; i < 3; i++) h.log.append('track:x', 'new_comment');
    await h.log.pruneBefore(new Date(Date.now() - 30_000));
    const c = await h.liveClient('/tracks/x/events', { 'Last-Event-ID': '5' });
    await waitFor(() => c.ids().length === 3, { what: 'the replay' });
    expect(c.ofType('reset')).toHaveLength(0);
    expect(c.ids()).toEqual([6, 7, 8]);
  });

  test('disconnects a subscriber that stops reading, while others keep up', async () => {
    const h = await startHub({ maxBufferBytes: 64 * 1024 });
    const healthy = await h.liveClient('/tracks/slow/events');
    const stalled = net.connect(h.port, '127.0.0.1');
    stalled.on('error', () => undefined);
    stalled.pause(); // never reads: the kernel buffers fill, then the server's
    stalled.write('GET /tracks/slow/events?user=2 HTTP/1.1\r\nHost: x\r\n\r\n');
    cleanups.push(() => void stalled.destroy());
    await waitFor(() => h.hub.openStreams().track === 2 && h.joined() === 2, {
      what: 'the stalled stream to join',
    });

    const blob = 'x'.repeat(32 * 1024);
    let sent = 0;
    while ((await counterValue(h.metrics.slowSubscriberDisconnects)) === 0) {
      if (sent >= 2000) throw new Error('the stalled subscriber was never disconnected');
      h.bus.deliverEvent(h.log.append('track:slow', 'new_comment', { blob }));
      sent++;
      if (sent % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => h.hub.openStreams().track === 1, {
      what: 'the stalled stream to be removed',
    });
    await waitFor(() => healthy.ids().length === sent, {
      what: 'the healthy subscriber to get every event',
      timeoutMs: 20_000,
    });
    expect(healthy.ended).toBe(false);
    expect(healthy.ids()).toEqual(Array.from({ length: sent }, (_, i) => i + 1));
  });

  test('refuses streams over the per-user and per-replica caps with JSON errors', async () => {
    const h = await startHub({ maxStreamsPerUser: 2, maxStreamsPerReplica: 3 });
    await h.liveClient('/tracks/a/events?user=1');
    await h.liveClient('/me/events?user=1');
    const overUser = await h.client('/tracks/b/events?user=1');
    expect(overUser.res.statusCode).toBe(429);
    expect(overUser.res.headers['retry-after']).toMatch(/^\d+$/);
    expect(overUser.res.headers['content-type']).toMatch(/^application\/json/);
    await waitFor(() => overUser.ended, { what: 'the refusal body' });
    expect(JSON.parse(overUser.raw)).toEqual({
      error: { code: 'too_many_streams', message: expect.any(String) },
    });

    await h.liveClient('/tracks/a/events?user=2');
    const overReplica = await h.client('/tracks/a/events?user=3');
    expect(overReplica.res.statusCode).toBe(503);
    await waitFor(() => overReplica.ended, { what: 'the refusal body' });
    expect(JSON.parse(overReplica.raw)).toEqual({
      error: { code: 'replica_full', message: expect.any(String) },
    });
    expect(h.hub.openStreams()).toEqual({ track: 2, user: 1 });
  });

  test('catchUp delivers what the log has beyond what was delivered (also on bus reconnect)', async () => {
    const h = await startHub();
    const c = await h.liveClient('/tracks/c/events');
    const other = await h.liveClient('/me/events?user=3');
    h.bus.deliverEvent(h.log.append('track:c', 'new_comment'));
    await waitFor(() => c.ids().length === 1, { what: 'the first event' });
    // The bus loses these (an outage): only the log has them.
    h.log.append('track:c', 'new_comment');
    h.log.append('track:c', 'comment_edited');
    h.log.append('user:3', 'mention');
    await h.hub.catchUp();
    await waitFor(() => c.ids().length === 3 && other.ids().length === 1, { what: 'caught up' });
    expect(c.ids()).toEqual([1, 2, 3]);
    expect(other.ids()).toEqual([1]);

    h.log.append('track:c', 'comment_deleted');
    h.bus.simulateReconnect();
    await waitFor(() => c.ids().length === 4, { what: 'caught up after reconnect' });
    expect(c.events.at(-1)!.event).toBe('comment_deleted');
  });

  test('a gap the log cannot fill right now is filled once it answers again', async () => {
    const h = await startHub();
    const c = await h.liveClient('/tracks/g/events');
    h.log.append('track:g', 'new_comment');
    const second = h.log.append('track:g', 'new_comment');
    h.log.failReads = true;
    h.bus.deliverEvent(second); // 1 was lost on the bus: a gap, and the log is down
    await waitFor(() => h.log.failedReads >= 2, { what: 'the fill and its retry to fail' });
    expect(c.ids()).toEqual([]);
    h.log.failReads = false;
    await waitFor(() => c.ids().length === 2, { what: 'the retried fill', timeoutMs: 5000 });
    expect(c.ids()).toEqual([1, 2]);
  });

  test('a resume that cannot read the log ends the connection so the client retries', async () => {
    const h = await startHub();
    h.log.append('track:h', 'new_comment');
    await h.liveClient('/tracks/h/events?user=2'); // the stream is live on this replica
    h.log.failReads = true;
    const c = await h.client('/tracks/h/events', { 'Last-Event-ID': '0' });
    await waitFor(() => c.ended, { what: 'the connection to end' });
    expect(c.ofType('connected')).toHaveLength(1);
    expect(c.ids()).toEqual([]);
    await waitFor(() => h.hub.openStreams().track === 1, { what: 'cleanup' });
  });

  test('a stream not yet live here is answered 503 unavailable while the log cannot be read', async () => {
    const h = await startHub();
    h.log.append('track:u', 'new_comment');
    h.log.failReads = true;
    for (const headers of [{}, { 'Last-Event-ID': '0' }] as Record<string, string>[]) {
      const c = await h.client('/tracks/u/events', headers);
      expect(c.res.statusCode).toBe(503);
      expect(c.res.headers['retry-after']).toBe('1');
      await waitFor(() => c.ended, { what: 'the refusal body' });
      expect(JSON.parse(c.raw)).toEqual({
        error: { code: 'unavailable', message: expect.any(String) },
      });
    }
    expect(h.hub.openStreams()).toEqual({ track: 0, user: 0 });
    // Once the log answers again, the same stream opens and is served live.
    h.log.failReads = false;
    const c = await h.liveClient('/tracks/u/events');
    expect(c.res.statusCode).toBe(200);
    h.bus.deliverEvent(h.log.append('track:u', 'new_comment'));
    await waitFor(() => c.ids().length === 1, { what: 'a live event' });
    expect(c.ids()).toEqual([2]);
  });

  test('drain spreads the closes, sends a short retry and refuses new streams', async () => {
    const h = await startHub();
    const clients = await Promise.all(
      [1, 2, 3, 4].map((u) => h.liveClient(`/tracks/d/events?user=${u}`)),
    );
    const endedAt = new Map<RawSseClient, number>();
    for (const c of clients) c.res.on('end', () => endedAt.set(c, Date.now()));
    const started = Date.now();
    await h.hub.drain(400);
    expect(h.hub.openStreams()).toEqual({ track: 0, user: 0 });
    await waitFor(() => endedAt.size === 4, { what: 'all clients to see the end' });
    for (const c of clients) expect(c.retry).toBe(500);
    const times = [...endedAt.values()].sort((a, b) => a - b);
    expect(times[3]! - times[0]!).toBeGreaterThanOrEqual(150);
    expect(times[3]! - started).toBeLessThan(2000);
    await waitFor(() => !h.bus.subscribed.has('track:d'), { what: 'unsubscribe' });

    const refused = await h.client('/tracks/d/events');
    expect(refused.res.statusCode).toBe(503);
    await waitFor(() => refused.ended, { what: 'the refusal body' });
    expect(JSON.parse(refused.raw).error.code).toBe('shutting_down');
  });

  test('the eventsource package receives named events and resumes after a dropped connection', async () => {
    const h = await startHub({ retryMs: 50 });
    const es = new EventSource(`${h.base}/tracks/e/events`);
    cleanups.push(() => es.close());
    const got: { type: string; id: string; data: Record<string, unknown> }[] = [];
    for (const type of ['connected', 'new_comment', 'comment_edited']) {
      es.addEventListener(type, (e: MessageEvent<string>) =>
        got.push({ type, id: e.lastEventId, data: JSON.parse(e.data) }),
      );
    }
    await waitFor(() => got.length === 1 && h.joined() === 1, { what: 'connected' });
    h.bus.deliverEvent(h.log.append('track:e', 'new_comment'));
    h.bus.deliverEvent(h.log.append('track:e', 'comment_edited'));
    await waitFor(() => got.length === 3, { what: 'two events' });
    expect(got.map((g) => [g.type, g.id])).toEqual([
      ['connected', ''],
      ['new_comment', '1'],
      ['comment_edited', '2'],
    ]);
    expect(got[1]!.data).toMatchObject({ type: 'new_comment', track_id: 'e' });

    // The replica's connection dies; meanwhile two events are committed.
    for (const s of h.serverSockets) s.destroy();
    h.log.append('track:e', 'new_comment');
    h.log.append('track:e', 'new_comment');
    await waitFor(() => got.length === 6, { what: 'reconnect and replay' });
    expect(got.slice(3).map((g) => [g.type, g.id])).toEqual([
      ['connected', ''],
      ['new_comment', '3'],
      ['new_comment', '4'],
    ]);
  });
});
