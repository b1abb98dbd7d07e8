/**
 * Lock order in the event log, against the real PostgreSQL. Writers lock comment rows, then
 * the comment's stored events (an edit or a delete rewriting them), then stream heads in
 * sorted order. The relay's background statements must fit that order: marking published
 * and pruning skip events a rewrite holds instead of waiting for them, and pruning locks
 * stream heads in sorted order, so none of them can deadlock with a request.
 */
import { Client } from 'pg';
import { PrismaEventLog } from '../src/store/event-log';
import { createDatabase, type Db } from '../src/store/prisma';
import { createTestDatabase, type TestDatabase } from '../harness/test-db';

let db: TestDatabase;
let prisma: Db;
let log: PrismaEventLog;
/** Plays a request's transaction holding locks. */
let holder: Client;
/** Reads state and watches for lock waits. */
let pg: Client;

beforeAll(async () => {
  db = await createTestDatabase();
  // As a replica builds it: the relay's statements on the pool directly, not through Prisma.
  const database = createDatabase(db.url, 2);
  prisma = database.prisma;
  log = new PrismaEventLog(prisma, database.query);
  holder = new Client({ connectionString: db.url });
  pg = new Client({ connectionString: db.url });
  for (const c of [holder, pg]) {
    c.on('error', () => undefined);
    await c.connect();
  }
});

afterAll(async () => {
  await holder?.end().catch(() => undefined);
  await pg?.end().catch(() => undefined);
  await prisma?.$disconnect();
  await db?.drop();
});

afterEach(async () => {
  await holder.query('ROLLBACK').catch(() => undefined);
});

let streamNo = 0;
/** A stream with `n` events of comment `commentId`, created `ageMs` ago; returns its name. */
async function streamWithEvents(
  n: number,
  commentId: number,
  ageMs = 0,
  stream = `track:locks-${++streamNo}`,
): Promise<string> {
  await pg.query('INSERT INTO stream_heads (stream, last_seq) VALUES ($1, $2)', [stream, n]);
  await pg.query(
    `INSERT INTO stream_events (stream, seq, type, data, comment_id, created_at)
     SELECT $1, s, 'comment_deleted', jsonb_build_object('type', 'comment_deleted',
            'track_id', 'x', 'comment_id', $2::int), $2, now() - make_interval(secs => $3)
     FROM generate_series(1, $4::int) AS s`,
    [stream, commentId, ageMs / 1000, n],
  );
  return stream;
}

async function lockWaiters(): Promise<number> {
  const { rows } = await pg.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'`,
  );
  return rows[0]!.n;
}

/** 'finished' when `op` completes while no backend waits for a lock; 'waited' otherwise. */
async function finishesWithoutWaiting(op: Promise<unknown>): Promise<'finished' | 'waited'> {
  let settled = false;
  const finished = op.then(
    () => 'finished' as const,
    (err: unknown) => {
      throw err;
    },
  );
  void finished.finally(() => (settled = true)).catch(() => undefined);
  const watcher = (async () => {
    while (!settled) {
      if ((await lockWaiters()) > 0) return 'waited' as const;
      await new Promise((r) => setTimeout(r, 10));
    }
    return 'finished' as const;
  })();
  return Promise.race([finished, watcher]);
}

test('marking published skips events an edit or a delete holds, and never waits for them', async () => {
  const stream = await streamWithEvents(3, 9001);
  await holder.query('BEGIN');
  await holder.query('SELECT 1 FROM stream_events WHERE stream = $1 AND seq = 2 FOR UPDATE', [
    stream,
  ]);
  const marking = log.markPublished([1, 2, 3].map((seq) => ({ stream, seq })));
  const outcome = await finishesWithoutWaiting(marking);
  await holder.query('COMMIT');
  await marking;
  expect(outcome).toBe('finished');
  const { rows } = await pg.query(
    'SELECT seq::int, published_at IS NOT NULL AS published FROM stream_events WHERE stream = $1 ORDER BY seq',
    [stream],
  );
  // The held one stays unpublished: the relay publishes it again later.
  expect(rows).toEqual([
    { seq: 1, published: true },
    { seq: 2, published: false },
    { seq: 3, published: true },
  ]);
});

test('pruning skips events an edit or a delete holds, never waits for them, and takes them next time', async () => {
  const stream = await streamWithEvents(3, 9002, 60_000);
  await holder.query('BEGIN');
  await holder.query('SELECT 1 FROM stream_events WHERE stream = $1 AND seq = 1 FOR UPDATE', [
    stream,
  ]);
  const before = new Date(Date.now() - 1000);
  const pruning = log.pruneBefore(before);
  const outcome = await finishesWithoutWaiting(pruning);
  await holder.query('COMMIT');
  const pruned = await pruning;
  expect(outcome).toBe('finished');
  expect(pruned).toBeGreaterThanOrEqual(2);
  const left = await pg.query('SELECT seq::int FROM stream_events WHERE stream = $1', [stream]);
  expect(left.rows).toEqual([{ seq: 1 }]);
  const head = await pg.query('SELECT retained_from::int FROM stream_heads WHERE stream = $1', [
    stream,
  ]);
  expect(head.rows).toEqual([{ retained_from: 4 }]);
  await log.pruneBefore(before);
  const after = await pg.query('SELECT seq FROM stream_events WHERE stream = $1', [stream]);
  expect(after.rows).toEqual([]);
});

test('pruning locks stream heads in sorted order, as writers do: no deadlock with a writer of two streams', async () => {
  // Heads stored out of order, so an unordered scan meets the second before the first.
  const second = await streamWithEvents(1, 9003, 60_000, 'track:order-b');
  const first = await streamWithEvents(1, 9004, 60_000, 'track:order-a');
  // A writer holds the first head and will want the second, as a comment write does.
  await holder.query('BEGIN');
  await holder.query('SELECT 1 FROM stream_heads WHERE stream = $1 FOR UPDATE', [first]);
  const pruning = log.pruneBefore(new Date(Date.now() - 1000));
  let settledEarly = false;
  void pruning.then(
    () => (settledEarly = true),
    () => (settledEarly = true),
  );
  // Pruning queues behind the writer (on the first head, holding nothing the writer needs).
  for (let i = 0; i < 500 && (await lockWaiters()) === 0 && !settledEarly; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  expect(settledEarly).toBe(false);
  await holder.query('UPDATE stream_heads SET last_seq = last_seq WHERE stream = $1', [second]);
  await holder.query('COMMIT');
  await expect(pruning).resolves.toBeGreaterThanOrEqual(2);
});
