/**
 * Property-based fuzzing of every endpoint (contract section 7, "No input reaches a 5xx"):
 * generated methods, paths, ids, query strings, headers (tokens, cookies, Last-Event-ID,
 * Origin) and bodies (JSON, form, raw bytes) go byte for byte to a real server on real
 * PostgreSQL and on the embedded database, by both request paths (lean entry and express).
 * For every request: no 5xx; every error has the contract's body; a refused request changes
 * nothing. Afterwards an ordinary write, list and stream still work.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { loadConfig } from '../src/config/config';
import { signUserToken } from '../src/auth/tokens';
import { startServer, type RunningServer } from '../src/server';
import { fuzzRequest, type FuzzWorld } from './support/fuzz-requests';
import { jsonRequest } from '../harness/http';
import { rawRequest, type RawAnswer, type RawRequest } from './support/raw-http';
import { TEST_ADMIN_TOKEN, userToken } from '../harness/replica';
import { USERS, embeddedTestEnv, startRestEnv, type RestEnv } from './support/rest-env';
import { openSse } from './support/sse-client';

/** Runs per database: bounded so that both suites stay well under 30 s on CI. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 150);

async function authValues(userIds: number[]): Promise<string[]> {
  const bearer = (t: string) => `Bearer ${t}`;
  return [
    ...(await Promise.all(userIds.map(async (id) => bearer(await userToken(id))))),
    bearer(TEST_ADMIN_TOKEN),
    bearer(await userToken(userIds[0]!, -60)), // expired
    bearer(await userToken(987654)), // names no user
    bearer(await signUserToken('another-secret-0123456789', userIds[0]!)),
  ];
}

function describeRequest(req: RawRequest): string {
  const body = req.body.toString('utf8');
  return `${req.method} ${req.target} ${JSON.stringify(req.headers)} body=${JSON.stringify(body.length > 300 ? body.slice(0, 300) + '…' : body)}`;
}

/** The contract's error body, exactly: `{"error":{"code":"snake_case","message":"text"}}`. */
function assertErrorBody(ans: RawAnswer, what: string): void {
  const type = ans.headers['content-type'] ?? '';
  if (!type.startsWith('application/json'))
    throw new Error(
      `${what}: ${ans.status} without a JSON body (${type}): ${ans.body.toString('utf8')}`,
    );
  const body = JSON.parse(ans.body.toString('utf8')) as { error?: Record<string, unknown> };
  const keys = Object.keys(body).join(',');
  const errKeys = Object.keys(body.error ?? {})
    .sort()
    .join(',');
  if (keys !== 'error' || errKeys !== 'code,message')
    throw new Error(`${what}: error body has the wrong shape: ${ans.body.toString('utf8')}`);
  if (!/^[a-z]+(_[a-z]+)*$/.test(String(body.error!.code)))
    throw new Error(`${what}: error code is not snake_case: ${String(body.error!.code)}`);
  if (String(body.error!.message).trim() === '') throw new Error(`${what}: empty error message`);
}

interface Target {
  port: number;
  url: string;
  world: FuzzWorld;
  /** A digest of every row a refused request must leave unchanged. */
  fingerprint(): Promise<string>;
  /** A user token and a track for the ordinary requests after the run. */
  user: string;
  track: string;
}

async function fuzz(target: Target): Promise<void> {
  const seen = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(fuzzRequest(target.world), async (req) => {
      const what = describeRequest(req);
      const before = await target.fingerprint();
      const ans = await rawRequest(target.port, req);
      const key = `${req.method} ${req.target.split('?')[0]!.replace(/\/[^/]+$/, '/…')} ${ans.status}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      if (!(ans.status >= 200 && ans.status < 500))
        throw new Error(`${what}: answered ${ans.status} ${ans.body.toString('utf8')}`);
      if (ans.status >= 400 && req.method !== 'HEAD') assertErrorBody(ans, what);
      if (ans.status >= 400 && (await target.fingerprint()) !== before)
        throw new Error(`${what}: refused with ${ans.status} but changed the data`);
    }),
    { numRuns: RUNS, endOnFailure: true },
  );
  // FUZZ_VERBOSE=1 shows which answers the run reached, to judge the generators' coverage.
  if (process.env.FUZZ_VERBOSE) console.log([...seen].sort((a, b) => b[1] - a[1]));
}

/** After the fuzzing: an ordinary stream, write and list are served as usual. */
async function stillServes(target: Target): Promise<void> {
  const stream = await openSse(`${target.url}/api/tracks/${target.track}/events`, {
    token: target.user,
  });
  try {
    expect(stream.res.statusCode).toBe(200);
    await stream.waitForEvent((e) => e.event === 'connected');
    const posted = await jsonRequest(`${target.url}/api/tracks/${target.track}/comments`, 'POST', {
      token: target.user,
      body: { content: 'still here after the fuzzing', timestamp: 0 },
    });
    expect(posted.status).toBe(201);
    const id = (posted.json as { comment: { id: number } }).comment.id;
    const event = await stream.waitForEvent((e) => e.event === 'new_comment');
    expect(JSON.parse(event.rawData)).toMatchObject({ comment: { id } });
    const list = await jsonRequest(
      `${target.url}/api/tracks/${target.track}/comments?order=created&limit=200`,
      'GET',
      { token: target.user },
    );
    expect(list.status).toBe(200);
    expect((list.json as { comments: { id: number }[] }).comments.map((c) => c.id)).toContain(id);
    expect((await jsonRequest(`${target.url}/readyz`, 'GET')).status).toBe(200);
  } finally {
    stream.close();
  }
}

describe('on PostgreSQL', () => {
  let env: RestEnv | undefined;
  let target: Target;

  beforeAll(async () => {
    env = await startRestEnv();
    const e = env;
    const tracks = [await e.newTrack(60), await e.newTrack(null)];
    const ids: number[] = [];
    for (const [i, user] of (['bob', 'dan', 'creator'] as const).entries())
      ids.push((await e.postComment(user, tracks[i % 2]!, { content: `seed ${i} @bob` })).id);
    const userIds = Object.values(USERS).map((u) => u.id);
    target = {
      port: Number(new URL(e.url).port),
      url: e.url,
      world: {
        trackIds: tracks,
        commentIds: () => ids,
        userIds,
        usernames: Object.values(USERS).map((u) => u.username),
        authValues: await authValues(userIds),
        adminToken: TEST_ADMIN_TOKEN,
        ownOrigin: e.url,
      },
      async fingerprint() {
        const { rows } = await e.pg.query<{ digest: string }>(`
          SELECT concat_ws('|',
            (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM users t),
            (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM albums t),
            (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM tracks t),
            (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM comments t),
            (SELECT count(*) FROM comment_mentions),
            (SELECT count(*) FROM stream_events),
            (SELECT coalesce(sum(last_seq), 0) FROM stream_heads)) AS digest`);
        return rows[0]!.digest;
      },
      user: e.tokens.bob,
      track: tracks[0]!,
    };
  });

  afterAll(async () => {
    await env?.close();
  });

  test('no generated request reaches a 5xx, breaks the error shape or half-writes', async () => {
    await fuzz(target);
  });

  test('afterwards an ordinary stream, write and list work', async () => {
    await stillServes(target);
  });
});

describe('on the embedded database', () => {
  const DEMO_TRACKS = ['night-drive-01', 'night-drive-02', 'night-drive-03'];
  const DEMO_USERNAMES = ['alice', 'bob', 'carol', 'dave'];
  let dataDir: string;
  let running: RunningServer | undefined;
  let target: Target;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tc-fuzz-'));
    running = await startServer(loadConfig(embeddedTestEnv(dataDir)), { quiet: true });
    const url = running.url;
    const userIds = [1, 2, 3, 4];
    const bob = await userToken(2);
    const ids: number[] = [];
    for (const track of DEMO_TRACKS) {
      const res = await jsonRequest(`${url}/api/tracks/${track}/comments`, 'POST', {
        token: bob,
        body: { content: 'seed @alice', timestamp: 1 },
      });
      expect(res.status).toBe(201);
      ids.push((res.json as { comment: { id: number } }).comment.id);
    }
    target = {
      port: Number(new URL(url).port),
      url,
      world: {
        trackIds: DEMO_TRACKS,
        commentIds: () => ids,
        userIds,
        usernames: DEMO_USERNAMES,
        authValues: await authValues(userIds),
        adminToken: TEST_ADMIN_TOKEN,
        ownOrigin: url,
      },
      // The embedded database has no second door for a test: read it through the API.
      async fingerprint() {
        const lists = await Promise.all(
          DEMO_TRACKS.map((t) =>
            jsonRequest(`${url}/api/tracks/${t}/comments?order=created&limit=200`, 'GET', {
              token: bob,
            }),
          ),
        );
        return lists.map((l) => `${l.status}:${l.text}`).join('|');
      },
      user: bob,
      track: DEMO_TRACKS[0]!,
    };
  });

  afterAll(async () => {
    try {
      await running?.shutdown('test');
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('no generated request reaches a 5xx, breaks the error shape or half-writes', async () => {
    await fuzz(target);
  });

  test('afterwards an ordinary stream, write and list work', async () => {
    await stillServes(target);
  });
});
