/**
 * A statement that fails in the database cannot wedge the service, on PostgreSQL or on the
 * embedded database (issue 9, finding 1). pg's pool replaces a connection after any failed
 * statement; on the embedded database every connection shares PGlite's one session, where
 * the old connection's prepared statements (`tc_N`) used to survive, so the replacement's
 * Parse failed with 42P05 "already exists" for ever. Each embedded connection now starts on
 * a fresh session. Proved at the pool, at the session, and on a running server whose hot
 * insert a test trigger makes fail.
 */
import { createDatabase, type Database } from '../src/store/prisma';
import { adminPutOver, seedCatalog, userTokens } from '../harness/catalog';
import { DB_TARGETS, withClient, type DbTarget } from './support/db-targets';
import { jsonRequest } from '../harness/http';
import { SseClient, type CommentJson } from './support/sse-client';

/** The queries the service runs on named statements: raw on the pool, and through Prisma. */
async function namedStatementsWork(db: Database): Promise<void> {
  expect(await db.query<{ one: number }>('SELECT $1::int AS one', [1])).toEqual([{ one: 1 }]);
  expect(await db.prisma.user.count()).toBeGreaterThanOrEqual(0);
  expect(await db.prisma.$queryRaw<{ two: number }[]>`SELECT ${2}::int AS two`).toEqual([
    { two: 2 },
  ]);
}

describe.each(DB_TARGETS)('on %s', (kind, makeTarget) => {
  let target: DbTarget;
  beforeAll(async () => {
    target = await makeTarget();
  });
  afterAll(async () => {
    await target?.close();
  });

  test('a failed statement does not wedge the pool: its named statements run again', async () => {
    // One connection, as the embedded database allows: every failure replaces it.
    const db = createDatabase(target.url, 1);
    try {
      await namedStatementsWork(db);
      for (let round = 0; round < 3; round++) {
        // The finding's own failure: a lone surrogate's JSON escape refused by jsonb.
        await expect(db.query('SELECT $1::text::jsonb AS j', ['"x \\ud800"'])).rejects.toThrow(
          /json/i,
        );
        await namedStatementsWork(db);
        await expect(db.prisma.$queryRaw`SELECT 1 / ${0}::int AS boom`).rejects.toThrow(
          /division by zero/,
        );
        await namedStatementsWork(db);
      }
    } finally {
      await db.prisma.$disconnect();
    }
  });

  if (kind === 'embedded') {
    test('each connection starts on a fresh session, as on PostgreSQL', async () => {
      await withClient(target.url, async (c) => {
        await c.query('PREPARE leftover AS SELECT 1');
        await c.query("SET statement_timeout = '1234ms'");
        await c.query('CREATE TEMP TABLE leftover_table (x int)');
        await c.query('SELECT pg_advisory_lock(4242)');
        await c.query({ name: 'tc_0', text: 'SELECT $1::int AS n', values: [1] });
        await c.query('BEGIN');
      });
      await withClient(target.url, async (c) => {
        expect((await c.query('SELECT name FROM pg_prepared_statements')).rows).toEqual([]);
        expect((await c.query('SHOW statement_timeout')).rows).toEqual([
          { statement_timeout: '0' },
        ]);
        expect(
          (await c.query("SELECT to_regclass('pg_temp.leftover_table') AS t")).rows[0].t,
        ).toBeNull();
        expect((await c.query('SELECT pg_try_advisory_lock(4242) AS got')).rows[0].got).toBe(true);
        // Not inside the old connection's transaction: this one's own BEGIN opens one.
        expect((await c.query('SELECT now() = statement_timestamp() AS fresh')).rows).toEqual([
          { fresh: true },
        ]);
        await c.query({ name: 'tc_0', text: 'SELECT $1::int AS n', values: [2] });
      });
    });
  }

  test('a running server keeps serving after its hot insert failed in the database', async () => {
    const REFUSED = 'the database refuses this';
    // A test trigger makes the comment insert fail for one content, as any statement error would.
    await withClient(target.url, (c) =>
      c.query(`
        CREATE FUNCTION refuse_marked_comment() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.content = '${REFUSED}' THEN RAISE EXCEPTION 'refused by a test trigger'; END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_marked_comment BEFORE INSERT ON comments
          FOR EACH ROW EXECUTE FUNCTION refuse_marked_comment();`),
    );
    const streams: SseClient[] = [];
    try {
      // (The target shuts it down when it closes.)
      const running = await target.startServer();
      const base = running.url;
      const users = {
        author: { id: 101, username: 'wedge_author', is_creator: false, is_team: false },
        reader: { id: 102, username: 'wedge_reader', is_creator: true, is_team: false },
      };
      const track = 'wedge.track~1';
      await seedCatalog(
        adminPutOver(() => base),
        {
          users,
          album: { id: 101, title: 'Wedge Album', created_by_id: users.reader.id },
          tracks: [{ id: track }],
        },
      );
      const tokens = await userTokens(users);
      const comments = `${base}/api/tracks/${track}/comments`;
      const post = (content: string) =>
        jsonRequest(comments, 'POST', { token: tokens.author, body: { content } });
      const open = async (user: keyof typeof users) => {
        const s = await SseClient.open(`${base}/api/tracks/${track}/events`, {
          token: tokens[user],
        });
        streams.push(s);
        return s;
      };

      const stream = await open('reader');
      await stream.waitForEvent((e) => e.event === 'connected');
      for (let i = 0; i < 2; i++) {
        const refused = await post(REFUSED);
        expect(refused.status).toBe(500);
        expect(refused.json).toEqual({
          error: { code: 'internal_error', message: expect.any(String) },
        });
      }

      // Everything that needs the database still works, on the next request already.
      expect((await jsonRequest(`${base}/readyz`, 'GET')).status).toBe(200);
      const ok = await post('after the failure');
      expect(ok.status).toBe(201);
      const written = (ok.json as { comment: CommentJson }).comment;
      await stream.waitForEvent((e) => e.data.comment?.id === written.id);
      const list = await jsonRequest(comments, 'GET', { token: tokens.reader });
      expect(list.status).toBe(200);
      expect((list.json as { comments: CommentJson[] }).comments.map((c) => c.content)).toEqual([
        'after the failure',
      ]);
      const another = await open('author');
      expect(another.status).toBe(200);
      await another.waitForEvent((e) => e.event === 'connected');
      expect((await jsonRequest(`${base}/readyz`, 'GET')).status).toBe(200);
    } finally {
      for (const s of streams) s.close();
    }
  });
});
