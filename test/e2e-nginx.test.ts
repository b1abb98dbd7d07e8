import { spawn } from 'node:child_process';
import { useCluster, ResumingSubscriber, waitReady, type ClusterUser } from './support/cluster';
import { userToken } from '../harness/replica';
import { waitFor, waitForValue } from '../harness/wait';
import type { CommentJson } from './support/sse-client';

/**
 * Issue 4's end-to-end proof: the real nginx config in front of three real
 * replicas sharing PostgreSQL and Redis.
 */

const SHUTDOWN_TIMEOUT_MS = 10000;
const DRAIN_SPREAD_MS = 1000;

const c = useCluster({
  replicas: 3,
  env: {
    // The client-address test reads the app's access log lines.
    LOG_LEVEL: 'info',
    MAX_STREAMS_PER_USER: '500',
    SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    DRAIN_SPREAD_MS: String(DRAIN_SPREAD_MS),
  },
  // Every test client comes from loopback: raise the per-address edge limits.
  nginx: { streamsPerClient: 1000, writesPerSecond: 1000, writeBurst: 1000 },
});

describe('a stream through nginx', () => {
  test('curl -N gets connected, then a comment while the stream is still open; no gzip on the stream', async () => {
    const trackId = await c().newTrack();
    let out = '';
    const curl = spawn(
      'curl',
      [
        '-N',
        '-sS',
        '-D',
        '-', // response headers first, on stdout
        '-H',
        `Authorization: Bearer ${c().tokens.alice}`,
        // Asks for compression without curl's --compressed: a gzipped stream would arrive as binary.
        '-H',
        'Accept-Encoding: gzip',
        `${c().url}/api/tracks/${trackId}/events`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    curl.stdout.setEncoding('utf8');
    curl.stdout.on('data', (d: string) => (out += d));
    curl.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => out.includes('event: connected'), {
        timeoutMs: 30000,
        what: `curl to see the connected event (got: ${out})`,
      });
      const [head = '', body = ''] = out.split(/\r\n\r\n/, 2);
      const headers = head.toLowerCase();
      expect(headers).toMatch(/^http\/1\.1 200/);
      expect(headers).toMatch(/\ncontent-type: text\/event-stream/);
      expect(headers).toMatch(/\ncache-control: no-cache/);
      expect(headers).toMatch(/\nx-accel-buffering: no/);
      expect(headers).not.toMatch(/\ncontent-encoding:/);
      expect(body).toMatch(/^retry: \d+\n/);

      const comment = await c().postComment(c().url, 'bob', trackId, 'heard through nginx');
      const posted = Date.now();
      await waitFor(() => out.includes(`"id":${comment.id},`), {
        timeoutMs: 10000,
        what: `curl to receive comment ${comment.id} (got: ${out})`,
      });
      const delivered = Date.now();
      // Delivered while the stream is open: an unbuffered proxy passes each event on at once.
      expect(curl.exitCode).toBeNull();
      expect(delivered - posted).toBeLessThan(5000);
      expect(out).toMatch(
        new RegExp(`id: \\d+\\nevent: new_comment\\ndata: \\{[^\\n]*"id":${comment.id},`),
      );
    } finally {
      if (curl.exitCode === null) {
        const exited = new Promise((r) => curl.once('exit', r));
        curl.kill('SIGTERM');
        await exited;
      }
    }
  }, 90000);

  test('the same nginx does gzip a large JSON list (so the stream check above means something)', async () => {
    const trackId = await c().newTrack();
    await c().postComment(c().url, 'bob', trackId, 'x'.repeat(1900));
    const res = await c().request(c().url, 'GET', `/api/tracks/${trackId}/comments`, {
      user: 'alice',
      headers: { 'Accept-Encoding': 'gzip' },
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe('gzip');
  }, 60000);
});

describe('the client address behind nginx', () => {
  test('the app logs the socket address nginx saw (127.0.0.2), not a spoofed X-Forwarded-For; no token in any log', async () => {
    const trackId = await c().newTrack();
    const bearer = await userToken(2, 3601); // different exp → a token string seen nowhere else
    const cookie = await userToken(3, 3602);
    const asked: Record<string, string>[] = [
      // Bearer header (and a cookie that is not used because the header wins).
      {
        Authorization: `Bearer ${bearer}`,
        Cookie: `access_token=${cookie}`,
        'X-Forwarded-For': '203.0.113.9',
      },
      // The cookie alone.
      { Cookie: `theme=dark; access_token=${cookie}`, 'X-Forwarded-For': '203.0.113.9, 10.0.0.1' },
    ];
    const requestIds: string[] = [];
    for (const headers of asked) {
      const res = await c().request(c().url, 'GET', `/api/tracks/${trackId}/comments`, {
        headers,
        localAddress: '127.0.0.2',
      });
      expect(res.status).toBe(200);
      const rid = res.headers['x-request-id'];
      expect(typeof rid).toBe('string');
      requestIds.push(rid as string);
    }

    type LogLine = { req?: { id?: string; ip?: string }; res?: { statusCode?: number } };
    const logLineOf = (rid: string): LogLine | undefined => {
      for (const line of c().allOutput().split('\n')) {
        if (!line.includes(rid)) continue;
        try {
          const parsed = JSON.parse(line) as LogLine;
          if (parsed.req?.id === rid) return parsed;
        } catch {
          // not a JSON log line
        }
      }
      return undefined;
    };
    for (const rid of requestIds) {
      await waitFor(() => logLineOf(rid) !== undefined, {
        timeoutMs: 15000,
        what: `the app's log line for request ${rid}`,
      });
      const line = logLineOf(rid)!;
      expect(line.req?.ip).toBe('127.0.0.2');
      expect(line.res?.statusCode).toBe(200);
    }
    // nginx's own access log: the same client address, request ids shared with the app.
    await waitFor(() => requestIds.every((rid) => c().nginx!.accessLog().includes(rid)), {
      timeoutMs: 15000,
      what: 'nginx access log lines',
    });
    const nginxLines = c()
      .nginx!.accessLog()
      .split('\n')
      .filter((l) => requestIds.some((rid) => l.includes(rid)))
      .map((l) => JSON.parse(l) as { client: string });
    expect(nginxLines).toHaveLength(requestIds.length);
    for (const l of nginxLines) expect(l.client).toBe('127.0.0.2');

    const logs = c().allOutput() + c().nginx!.accessLog() + c().nginx!.errorLog();
    expect(logs).toContain('127.0.0.2');
    expect(logs).not.toContain('203.0.113.9');
    for (const secret of [bearer, cookie]) {
      expect(logs).not.toContain(secret);
      // The signature part alone must not leak either.
      expect(logs).not.toContain(secret.split('.')[2]!);
    }
  }, 60000);
});

describe('rolling restart under load', () => {
  const SUBSCRIBERS = 200;
  const TRACKS = 4;
  const POST_INTERVAL_MS = 100;
  const subscriberUsers: ClusterUser[] = ['alice', 'bob', 'carol', 'dave'];

  test('200 resuming subscribers get every comment exactly once, in order, while each replica restarts', async () => {
    const tracks: string[] = [];
    for (let i = 0; i < TRACKS; i++) tracks.push(await c().newTrack());
    const subscribers: { sub: ResumingSubscriber; trackId: string }[] = [];
    const posted = new Map<string, CommentJson[]>(tracks.map((t) => [t, []]));
    const postProblems: string[] = [];
    let retriedPosts = 0;
    let stopPosting = false;
    let poster: Promise<void> | undefined;

    try {
      for (let i = 0; i < SUBSCRIBERS; i++) {
        const trackId = tracks[i % TRACKS]!;
        const user = subscriberUsers[i % subscriberUsers.length]!;
        const sub = new ResumingSubscriber(
          `${c().url}/api/tracks/${trackId}/events`,
          c().tokens[user],
        );
        subscribers.push({ sub, trackId });
        sub.start();
      }
      await waitFor(() => subscribers.every((s) => s.sub.connections >= 1), {
        timeoutMs: 90000,
        intervalMs: 100,
        what: 'every subscriber to connect',
      });
      // least_conn spreads the streams over the three replicas.
      const perReplica = await Promise.all(
        c().replicas.map(async (_, slot) => {
          const m = await c().metrics(slot);
          return m.value('trackcomments_open_streams', { kind: 'track' });
        }),
      );
      expect(perReplica.reduce((a, b) => a + b, 0)).toBe(SUBSCRIBERS);
      for (const n of perReplica) expect(n).toBeGreaterThanOrEqual(SUBSCRIBERS / 3 / 2);

      // The poster: a steady rate through nginx, round robin over the tracks.
      // A 502/503 from nginx means no replica took the request: retry it.
      // A 201 is never repeated.
      let seq = 0;
      const totalPosted = () => [...posted.values()].reduce((n, l) => n + l.length, 0);
      poster = (async () => {
        while (!stopPosting) {
          const tick = Date.now();
          const trackId = tracks[seq % TRACKS]!;
          const content = `rolling ${seq++}`;
          // Answered by a replica (or failed outright); 502/503 answers are tried again.
          let refused: { status: number; text: string } | undefined;
          const outcome = await waitForValue(
            async () => {
              try {
                const res = await c().request(c().url, 'POST', `/api/tracks/${trackId}/comments`, {
                  user: 'erin',
                  body: { content, timestamp: 1 },
                });
                if (res.status !== 502 && res.status !== 503) return { res };
                retriedPosts++;
                refused = res;
                return undefined;
              } catch (err) {
                return { error: (err as Error).message };
              }
            },
            { what: `a replica to take "${content}"`, timeoutMs: 2000, intervalMs: 100 },
          ).catch(() => ({ error: `${refused?.status} ${refused?.text}` }));
          if ('error' in outcome) {
            postProblems.push(`${content}: ${outcome.error}`);
          } else if (outcome.res.status === 201) {
            posted.get(trackId)!.push((outcome.res.json as { comment: CommentJson }).comment);
          } else {
            postProblems.push(`${content}: ${outcome.res.status} ${outcome.res.text}`);
          }
          const wait = POST_INTERVAL_MS - (Date.now() - tick);
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      })();

      const exits: { slot: number; code: number | null; ms: number }[] = [];
      for (let slot = 0; slot < c().replicas.length; slot++) {
        const before = totalPosted();
        await waitFor(() => totalPosted() >= before + 10, {
          timeoutMs: 60000,
          what: 'comments to be posted before the next restart',
        });
        const replica = c().replicas[slot]!;
        const t0 = Date.now();
        const code = await replica.stop('SIGTERM');
        exits.push({ slot, code, ms: Date.now() - t0 });
        const fresh = await c().restartReplica(slot);
        await waitReady(fresh.url, 90000);
      }
      const before = totalPosted();
      await waitFor(() => totalPosted() >= before + 10, {
        timeoutMs: 60000,
        what: 'comments to be posted after the last restart',
      });
      stopPosting = true;
      await poster;

      // Each replica drained and exited cleanly (code 0 = the drain finished inside its bound).
      expect(exits.map((e) => e.code)).toEqual([0, 0, 0]);
      for (const e of exits) expect(e.ms).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
      expect(postProblems).toEqual([]);

      // What was committed is what the database holds (a POST answered 502 may have committed too).
      const committed = new Map<string, number[]>();
      for (const t of tracks) {
        const ids = (await c().listComments(c().url, t)).map((cm) => cm.id);
        committed.set(t, ids);
        const acknowledged = posted.get(t)!.map((cm) => cm.id);
        expect(ids).toEqual(expect.arrayContaining(acknowledged));
        expect(acknowledged.length).toBeGreaterThan(5);
      }
      await waitFor(
        () =>
          subscribers.every((s) => s.sub.commentIds().length >= committed.get(s.trackId)!.length),
        { timeoutMs: 60000, intervalMs: 100, what: 'every subscriber to catch up' },
      );
      for (const { sub, trackId } of subscribers) {
        // Exactly the committed comments, once each, in commit order (the poster is sequential).
        expect(sub.commentIds()).toEqual(committed.get(trackId));
        // Event ids strictly increase over the whole connection history.
        const ids = sub.events.map((e) => e.id);
        for (let i = 1; i < ids.length; i++) expect(ids[i]).toBeGreaterThan(ids[i - 1]!);
        // Every stream sat on a replica that was restarted at some point: each resumed.
        expect(sub.connections).toBeGreaterThanOrEqual(2);
      }
      // The drained streams were told to come back soon (the drain's retry hint).
      expect(subscribers.filter((s) => s.sub.retries.includes(500)).length).toBeGreaterThan(0);
      process.stdout.write(
        `rolling restart: ${[...posted.values()].reduce((n, l) => n + l.length, 0)} comments acknowledged, ` +
          `${retriedPosts} POSTs retried after 502/503, exits ${JSON.stringify(exits)}, ` +
          `connections per subscriber ${Math.min(...subscribers.map((s) => s.sub.connections))}..` +
          `${Math.max(...subscribers.map((s) => s.sub.connections))}\n`,
      );
    } finally {
      stopPosting = true;
      await poster?.catch(() => undefined);
      for (const s of subscribers) s.sub.stop();
    }
  }, 600000);

  test('no log of any replica (restarted ones included) or of nginx contains a token', async () => {
    const logs = c().allOutput() + c().nginx!.accessLog() + c().nginx!.errorLog();
    expect(logs.length).toBeGreaterThan(0);
    for (const token of Object.values(c().tokens)) {
      expect(logs).not.toContain(token);
      expect(logs).not.toContain(token.split('.')[2]!);
    }
  });
});
