/**
 * Typing across replicas and the limits of the live path, on two real
 * replicas sharing PostgreSQL and a private Redis: the shared typing rate
 * limit, stream caps and refusals, and slow-subscriber disconnection.
 */
import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { LIVE_USERS, metricValue, startLiveEnv, type LiveEnv, connected } from './support/live-env';
import { waitFor } from '../harness/wait';
import { numericIds, type SseClient } from './support/sse-client';

const TYPING_LIMIT = 3;
const TYPING_EXPIRES_MS = 4000;
const MAX_BUFFER = 4096;

let env: LiveEnv;

beforeAll(async () => {
  env = await startLiveEnv({
    env: {
      TYPING_LIMIT: String(TYPING_LIMIT),
      // Long enough that the window cannot roll over during a test.
      TYPING_WINDOW_MS: '60000',
      TYPING_EXPIRES_MS: String(TYPING_EXPIRES_MS),
      MAX_STREAMS_PER_USER: '2',
      MAX_SUBSCRIBER_BUFFER_BYTES: String(MAX_BUFFER),
    },
  });
});

afterAll(async () => {
  await env?.close();
});

/** The contract's error body: exactly `{"error":{"code","message"}}`, as JSON. */
function expectErrorBody(
  res: { headers: Record<string, unknown>; json: unknown },
  code: string,
): void {
  expect(String(res.headers['content-type'])).toMatch(/^application\/json/);
  expect(res.json).toEqual({ error: { code, message: expect.any(String) } });
  const message = (res.json as { error: { message: string } }).error.message;
  expect(message.trim().length).toBeGreaterThan(0);
}

const typing = (replica: LiveEnv['a'], user: keyof typeof LIVE_USERS, track: string, is: boolean) =>
  env.api(replica, 'POST', `/api/tracks/${track}/typing`, { user, body: { is_typing: is } });

describe('typing across replicas', () => {
  test('user_typing posted on one replica reaches subscribers on both, without an id', async () => {
    const track = await env.newTrack();
    const onB = await env.trackStream(env.b, 'bob', track);
    const onA = await env.trackStream(env.a, 'carol', track);
    await Promise.all([connected(onA), connected(onB)]);

    const res = await typing(env.a, 'alice', track, true);
    expect(res.status).toBe(202);
    for (const s of [onB, onA]) {
      const e = await s.waitForEvent((e) => e.event === 'user_typing');
      expect(e.id).toBeUndefined();
      expect(e.data).toEqual({
        type: 'user_typing',
        track_id: track,
        user_id: LIVE_USERS.alice.id,
        username: 'alice',
        is_typing: true,
        expires_in_ms: TYPING_EXPIRES_MS,
      });
    }
    // Ephemeral events do not move the resume point.
    expect(onB.lastEventId).toBeUndefined();

    const stop = await typing(env.b, 'alice', track, false);
    expect(stop.status).toBe(202);
    for (const s of [onB, onA]) {
      const events = await s.waitForEvents((e) => e.event === 'user_typing', 2);
      expect(events[1]!.data.is_typing).toBe(false);
      expect(events[1]!.id).toBeUndefined();
    }
    onA.close();
    onB.close();
  });

  test('the typing limit is shared by the replicas; other tracks and users are not limited by it', async () => {
    const track = await env.newTrack();
    const otherTrack = await env.newTrack();
    const watcher = await env.trackStream(env.b, 'erin', track);
    await connected(watcher);

    // Alternate replicas: the count must be one across both.
    const replicas = [env.a, env.b, env.a];
    for (let i = 0; i < TYPING_LIMIT; i++) {
      const ok = await typing(replicas[i]!, 'dave', track, i % 2 === 0);
      expect(ok.status).toBe(202);
    }
    const refused = await typing(env.b, 'dave', track, true);
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    expectErrorBody(refused, 'rate_limited');
    const refusedOnA = await typing(env.a, 'dave', track, true);
    expect(refusedOnA.status).toBe(429);
    expectErrorBody(refusedOnA, 'rate_limited');

    // Same user on another track, another user on the same track: not limited.
    expect((await typing(env.a, 'dave', otherTrack, true)).status).toBe(202);
    expect((await typing(env.b, 'frank', track, true)).status).toBe(202);

    // The refused requests emitted nothing: once frank's later event arrived, dave has exactly 3.
    await watcher.waitForEvent((e) => e.event === 'user_typing' && e.data.username === 'frank');
    const fromDave = watcher.events('user_typing').filter((e) => e.data.username === 'dave');
    expect(fromDave.map((e) => e.data.is_typing)).toEqual([true, false, true]);
    expect(watcher.events().every((e) => e.data.track_id === track)).toBe(true);

    const metricsA = await env.metrics(env.a);
    const metricsB = await env.metrics(env.b);
    expect(
      metricValue(metricsA, 'trackcomments_rate_limited_total', { limiter: 'typing' }) +
        metricValue(metricsB, 'trackcomments_rate_limited_total', { limiter: 'typing' }),
    ).toBe(2);
    watcher.close();
  });
});

describe('stream caps and refusals', () => {
  test('a user’s third stream on a replica gets 429 with the error body (MAX_STREAMS_PER_USER=2)', async () => {
    const [t1, t2, t3] = [await env.newTrack(), await env.newTrack(), await env.newTrack()];
    const first = await env.trackStream(env.a, 'frank', t1!);
    const second = await env.personalStream(env.a, 'frank');
    await Promise.all([connected(first), connected(second)]);

    const third = await env.trackStream(env.a, 'frank', t2!);
    expect(third.status).toBe(429);
    expect(third.headers['retry-after']).toMatch(/^\d+$/);
    expect(String(third.headers['content-type'])).toMatch(/^application\/json/);
    expect(await third.bodyJson()).toEqual({
      error: { code: 'too_many_streams', message: expect.any(String) },
    });

    // Closing one frees a slot (the server notices the close asynchronously: retry briefly).
    first.close();
    let again: SseClient | undefined;
    await waitFor(
      async () => {
        again?.close();
        again = await env.trackStream(env.a, 'frank', t3!);
        return again.status === 200;
      },
      { timeoutMs: 5000, intervalMs: 50, what: 'a free stream slot after closing one' },
    );
    await connected(again!);
    // Still capped at two.
    const over = await env.personalStream(env.a, 'frank');
    expect(over.status).toBe(429);
    second.close();
    again!.close();
  });

  test('an unknown track is 404 JSON; no or a bad token is 401 JSON', async () => {
    const unknown = await env.trackStream(env.b, 'bob', 'no-such-track');
    expect(unknown.status).toBe(404);
    expect(String(unknown.headers['content-type'])).toMatch(/^application\/json/);
    expect(await unknown.bodyJson()).toEqual({
      error: { code: 'not_found', message: expect.any(String) },
    });

    const track = await env.newTrack();
    const paths = [`/api/tracks/${track}/events`, '/api/me/events'];
    for (const path of paths) {
      const noToken = await env.api(env.a, 'GET', path, {
        headers: { Accept: 'text/event-stream' },
      });
      expect(noToken.status).toBe(401);
      expectErrorBody(noToken, 'unauthenticated');

      const badToken = await env.api(env.b, 'GET', path, {
        headers: { Accept: 'text/event-stream', Authorization: 'Bearer not.a.jwt' },
      });
      expect(badToken.status).toBe(401);
      expect((badToken.json as { error: { code: string } }).error.code).toMatch(/^[a-z_]+$/);

      // Tokens are never taken from the query string.
      const inQuery = await env.api(
        env.a,
        'GET',
        `${path}?access_token=${env.tokens.bob}&token=${env.tokens.bob}`,
        { headers: { Accept: 'text/event-stream' } },
      );
      expect(inQuery.status).toBe(401);
    }
  });
});

describe('slow subscribers', () => {
  test('a client that never reads is disconnected; a reading one on the same track keeps receiving', async () => {
    const track = await env.newTrack();
    const reader = await env.trackStream(env.a, 'bob', track);
    await connected(reader);
    const openStreams = async () =>
      metricValue(await env.metrics(env.a), 'trackcomments_open_streams', { kind: 'track' });
    const openBefore = await openStreams();

    const slow = await startStalledClient(
      env.a.port,
      `GET /api/tracks/${track}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Authorization: Bearer ${env.tokens.carol}\r\nAccept: text/event-stream\r\n\r\n`,
    );
    try {
      await waitFor(async () => (await openStreams()) === openBefore + 1, {
        what: 'the slow client’s stream to open',
      });

      // 3-byte UTF-8 characters: ~6 KB per event, so the kernel buffers fill sooner.
      const big = '\u20ac'.repeat(1990);
      let posted = 0;
      const disconnects = async () =>
        metricValue(await env.metrics(env.a), 'trackcomments_slow_subscriber_disconnects_total');
      // Post in bursts until the server gives up on the slow client (bounded).
      while ((await disconnects()) === 0) {
        if (posted >= 1000)
          throw new Error(`no slow-subscriber disconnect after ${posted} comments`);
        await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            env.postComment(i % 2 ? env.b : env.a, 'alice', track, `${posted + i} ${big}`),
          ),
        );
        posted += 10;
      }
      await waitFor(async () => (await openStreams()) === openBefore, {
        what: 'the slow stream to be gone from open_streams',
      });

      // The slow client sees its connection end once it reads what was already sent.
      const received = await slow.readToEnd();
      expect(received).toBeGreaterThan(0);

      // The reading client got everything, in order, and still gets new events.
      const after = await env.postComment(env.b, 'alice', track, 'after the drop');
      await reader.waitForEvent((e) => e.data.comment?.id === after.id, 20000);
      const stored = reader.storedEvents();
      expect(stored.length).toBe(posted + 1);
      expect(numericIds(stored)).toEqual(Array.from({ length: posted + 1 }, (_, i) => i + 1));
      expect(reader.ended).toBe(false);
    } finally {
      slow.kill();
      reader.close();
    }
  });
});

/**
 * A client that sends `request` and then reads nothing, with a small socket
 * receive buffer (Node cannot set SO_RCVBUF on TCP; perl from perl-base can),
 * so the server's own buffer grows after a few tens of KB instead of MBs.
 */
async function startStalledClient(
  port: number,
  request: string,
): Promise<{ readToEnd(timeoutMs?: number): Promise<number>; kill(): void }> {
  const script = `
    use strict; use Socket qw(:DEFAULT IPPROTO_TCP TCP_MAXSEG);
    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096) or die "rcvbuf: $!";
    setsockopt($s, IPPROTO_TCP, TCP_MAXSEG, 536) or die "maxseg: $!";
    connect($s, sockaddr_in(${port}, inet_aton('127.0.0.1'))) or die "connect: $!";
    my $req = do { local $/; <STDIN> };
    syswrite($s, $req) == length($req) or die "write: $!";
    $| = 1; print "sent\n";
    open(my $go, '<&=', 3) or die "fd3: $!"; <$go>;
    my $n = 0; my $buf;
    while (my $r = sysread($s, $buf, 65536)) { $n += $r }
    print "eof $n\n";`;
  const child = spawn('perl', ['-e', script], { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  child.stdin!.end(request);
  await waitFor(() => out.includes('sent\n') || child.exitCode !== null, {
    what: 'the stalled client to send its request',
  });
  if (!out.includes('sent\n')) throw new Error(`stalled client failed: ${out}`);
  const go = child.stdio[3] as Writable;
  return {
    async readToEnd(timeoutMs = 10000) {
      go.end('go\n');
      await waitFor(() => /eof \d+/.test(out), {
        timeoutMs,
        what: 'the stalled client to see EOF',
      });
      return Number(/eof (\d+)/.exec(out)![1]);
    },
    kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
