import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { RequestListener } from 'node:http';
import pino, { type Logger } from 'pino';
import { Client } from 'pg';
import { waitFor } from '../../harness/wait';
import request, { type Response } from 'supertest';
import { loadConfig } from '../../src/config/config';
import { startServer, type RunningServer } from '../../src/server';
import { putTrack, seedCatalog, userTokens, type AdminPut } from '../../harness/catalog';
import type { CommentJson } from './sse-client';
import { createTestDatabase, type TestDatabase } from '../../harness/test-db';
import { TEST_ADMIN_TOKEN, TEST_AUTH_SECRET, userToken } from '../../harness/replica';

export { TEST_ADMIN_TOKEN, TEST_AUTH_SECRET, userToken };

/**
 * The catalogue every REST test file starts from. Ids are fixed so tests can
 * name them; usernames are distinct from the embedded demo users on purpose.
 */
export const USERS = {
  /** Owns ALBUM_ID: gets a `mention` for every comment on its tracks. */
  creator: { id: 1, username: 'cara', is_creator: true, is_team: false },
  bob: { id: 2, username: 'bob', is_creator: false, is_team: false },
  /** Staff: may delete anyone's comment. */
  team: { id: 3, username: 'tess', is_creator: false, is_team: true },
  dan: { id: 4, username: 'dan', is_creator: false, is_team: false },
  erin: { id: 5, username: 'erin_5', is_creator: false, is_team: false },
} as const;
export type UserKey = keyof typeof USERS;

export const ALBUM_ID = 1;
/** A track with a duration of 60 s, made at setup. */
export const TRACK_TIMED = 'track-timed';
/** A track without a duration, made at setup. */
export const TRACK_UNTIMED = 'track-untimed';

export const adminAuth = { Authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

/** What every server a test starts in-process runs with, whatever its database. */
const TEST_SERVER_ENV = {
  NODE_ENV: 'test',
  AUTH_SECRET: TEST_AUTH_SECRET,
  ADMIN_TOKEN: TEST_ADMIN_TOKEN,
  PORT: '0',
  HOST: '127.0.0.1',
  LOG_LEVEL: 'silent',
  // Nothing to spread out at shutdown in these tests: close at once.
  DRAIN_SPREAD_MS: '0',
};

/** The environment `startServer` gets in every REST test (plus per-file extras). */
export function testEnv(
  databaseUrl: string,
  extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
  return { ...TEST_SERVER_ENV, DATABASE_URL: databaseUrl, ...extra };
}

/** The embedded default in a test: no DATABASE_URL, the database in `dataDir`. */
export function embeddedTestEnv(
  dataDir: string,
  extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
  return { ...TEST_SERVER_ENV, DATA_DIR: dataDir, ...extra };
}

/** A pino logger writing into memory, so a test can read what would have been logged. */
export function captureLogger(level = 'trace'): { logger: Logger; text(): string } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: pino({ level }, sink), text: () => chunks.join('') };
}

export interface RestEnv {
  db: TestDatabase;
  /** Direct connection to the test database, for asserting rows and events. */
  pg: Client;
  running: RunningServer;
  /** What `running` serves each request with, lean paths then the express app (for supertest). */
  app: RequestListener;
  url: string;
  /** A user JWT (HS256, 1 h) per seeded user. */
  tokens: Record<UserKey, string>;
  /** `{ Authorization: 'Bearer <jwt>' }` of a seeded user. */
  as(user: UserKey): { Authorization: string };
  /** Creates a fresh track on ALBUM_ID (so a test sees only its own comments). */
  newTrack(durationS?: number | null, albumId?: number): Promise<string>;
  /** POST a JSON comment as `user`; asserts 201 and returns the comment. */
  postComment(user: UserKey, trackId: string, body: Record<string, unknown>): Promise<Comment>;
  /** Starts another server on the same database (shut down by `close`). */
  startExtraServer(
    extraEnv?: Record<string, string>,
    opts?: { logger?: Logger },
  ): Promise<RunningServer>;
  /** Shuts every server down, closes `pg` and drops the database; safe to call twice. */
  close(): Promise<void>;
}

/** A comment as the contract's JSON shows it. */
export type Comment = CommentJson;

async function expectStatus(res: Response, status: number, what: string): Promise<Response> {
  if (res.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res;
}

/**
 * A fresh database, one server on it, and the seed catalogue made through
 * the admin API. Everything made so far is released if a step fails.
 */
export async function startRestEnv(
  opts: { env?: Record<string, string>; logger?: Logger } = {},
): Promise<RestEnv> {
  const servers: RunningServer[] = [];
  let db: TestDatabase | undefined;
  let pg: Client | undefined;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const errors: unknown[] = [];
      for (const s of servers.splice(0).reverse())
        await s.shutdown('test').catch((e) => errors.push(e));
      await pg?.end().catch((e) => errors.push(e));
      await db?.drop().catch((e) => errors.push(e));
      if (errors.length > 0) throw errors[0];
    })());

  try {
    db = await createTestDatabase();
    const dbUrl = db.url;
    pg = new Client({ connectionString: dbUrl });
    pg.on('error', () => undefined);
    await pg.connect();
    const running = await startServer(loadConfig(testEnv(dbUrl, opts.env)), {
      logger: opts.logger,
      quiet: true,
    });
    servers.push(running);
    const app = running.handler;

    const put: AdminPut = async (path, body) => {
      await expectStatus(
        await request(app).put(path).set(adminAuth).send(body),
        201,
        `PUT ${path}`,
      );
    };
    await seedCatalog(put, {
      users: USERS,
      album: { id: ALBUM_ID, title: 'Test Album', created_by_id: USERS.creator.id },
      tracks: [
        { id: TRACK_TIMED, duration_s: 60 },
        { id: TRACK_UNTIMED, duration_s: null },
      ],
    });
    const tokens = await userTokens(USERS);

    const env: RestEnv = {
      db,
      pg,
      running,
      app,
      url: running.url,
      tokens,
      as: (user) => ({ Authorization: `Bearer ${tokens[user]}` }),
      newTrack: (durationS = null, albumId = ALBUM_ID) =>
        putTrack(put, albumId, { id: `t-${randomUUID()}`, duration_s: durationS }),
      async postComment(user, trackId, body) {
        const res = await request(app)
          .post(`/api/tracks/${trackId}/comments`)
          .set(env.as(user))
          .send(body);
        await expectStatus(res, 201, 'post comment');
        return res.body.comment as Comment;
      },
      async startExtraServer(extraEnv = {}, extraOpts = {}) {
        const s = await startServer(loadConfig(testEnv(dbUrl, extraEnv)), {
          logger: extraOpts.logger,
          quiet: true,
        });
        servers.push(s);
        return s;
      },
      close,
    };
    return env;
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

/**
 * Starts a RestEnv before the file's tests and closes it after them. Returns a
 * getter: the env exists only once `beforeAll` has run.
 */
export function useRestEnv(opts?: Parameters<typeof startRestEnv>[0]): () => RestEnv {
  let env: RestEnv | undefined;
  beforeAll(async () => {
    env = await startRestEnv(opts);
  });
  afterAll(async () => {
    await env?.close();
  });
  return () => {
    if (!env) throw new Error('rest env did not start');
    return env;
  };
}

/** Asserts the contract's error body: exactly `{"error":{"code":"<snake_case>","message":"<text>"}}`. */
export function expectError(res: Response, status: number, code?: string): void {
  if (res.status !== status) {
    throw new Error(`expected status ${status}, got ${res.status} ${JSON.stringify(res.body)}`);
  }
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(Object.keys(res.body)).toEqual(['error']);
  expect(Object.keys(res.body.error).sort()).toEqual(['code', 'message']);
  expect(res.body.error.code).toMatch(/^[a-z]+(_[a-z]+)*$/);
  expect(typeof res.body.error.message).toBe('string');
  expect(res.body.error.message.trim().length).toBeGreaterThan(0);
  if (code !== undefined) expect(res.body.error.code).toBe(code);
}

export interface EventRow {
  stream: string;
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

/** Stored events matching `where` (seq arrives as text: bigint). */
async function selectEvents(
  pg: Client,
  where: string,
  orderBy: string,
  params: unknown[],
): Promise<EventRow[]> {
  const { rows } = await pg.query<Omit<EventRow, 'seq'> & { seq: string }>(
    `SELECT stream, seq, type, data FROM stream_events WHERE ${where} ORDER BY ${orderBy}`,
    params,
  );
  return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
}

/** Every stored event that is about comment `commentId`, in (stream, seq) order. */
export function eventsForComment(pg: Client, commentId: number): Promise<EventRow[]> {
  return selectEvents(
    pg,
    `data->'comment'->>'id' = $1 OR data->>'comment_id' = $1`,
    'stream, seq',
    [String(commentId)],
  );
}

/** Every stored event of one stream, in seq order. */
export function eventsOfStream(pg: Client, stream: string): Promise<EventRow[]> {
  return selectEvents(pg, 'stream = $1', 'seq', [stream]);
}

/** Row counts that a failed request must leave unchanged. */
export async function rowCounts(pg: Client): Promise<Record<string, number>> {
  const { rows } = await pg.query<Record<string, string>>(
    `SELECT (SELECT count(*) FROM comments) AS comments,
            (SELECT count(*) FROM comment_mentions) AS mentions,
            (SELECT count(*) FROM stream_events) AS events,
            (SELECT COALESCE(sum(last_seq), 0) FROM stream_heads) AS seqs`,
  );
  const r = rows[0]!;
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v)]));
}

/**
 * Resolves once `n` backends of the test database wait for a lock: how a race test knows its
 * requests are in flight behind a transaction it holds open on another connection.
 */
export async function lockWaiters(pg: Client, n: number, timeoutMs: number): Promise<void> {
  await waitFor(
    async () => {
      const { rows } = await pg.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
      return rows[0]!.n >= n;
    },
    { timeoutMs, what: `${n} request(s) waiting for a lock` },
  );
}
