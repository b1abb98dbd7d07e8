/**
 * Prepared statements (DB_PREPARED_STATEMENTS): repeated SQL is parsed and
 * planned once per connection, against the real PostgreSQL.
 */
import { Client } from 'pg';
import { CommentStore } from '../src/store/comment-store';
import { createDatabase, preparedStatementNames } from '../src/store/prisma';
import { createTestDatabase, type TestDatabase } from '../harness/test-db';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

/** Runs a few repeated queries on a one-connection pool and lists that session's prepared statements. */
async function preparedAfterQueries(preparedStatements: boolean) {
  const { prisma, query } = createDatabase(db.url, 1, { preparedStatements });
  try {
    for (let i = 0; i < 3; i++) {
      await prisma.user.findMany({ where: { id: i } });
      await prisma.$queryRaw`SELECT ${i}::int AS n`;
      // A statement run on the pool directly (the hot write's way) follows the same setting.
      await query('SELECT $1::int AS direct', [i]);
    }
    return await prisma.$queryRaw<{ name: string; statement: string }[]>`
      SELECT name, statement FROM pg_prepared_statements ORDER BY name`;
  } finally {
    await prisma.$disconnect();
  }
}

test('with prepared statements on, each distinct query is prepared once on the connection', async () => {
  const rows = await preparedAfterQueries(true);
  for (const r of rows) expect(r.name).toMatch(/^tc_\d+$/);
  // users query, the raw SELECTs and the pg_prepared_statements query itself: no duplicates.
  expect(rows.filter((r) => r.statement.includes('"users"'))).toHaveLength(1);
  expect(rows.filter((r) => r.statement.includes('AS n'))).toHaveLength(1);
  expect(rows.filter((r) => r.statement.includes('AS direct'))).toHaveLength(1);
});

test('with prepared statements off, nothing is prepared', async () => {
  expect(await preparedAfterQueries(false)).toEqual([]);
});

test('names are stable per SQL text and bounded in number', () => {
  const name = preparedStatementNames(2);
  const a = name({ sql: 'SELECT 1' });
  expect(name({ sql: 'SELECT 1' })).toBe(a);
  const b = name({ sql: 'SELECT 2' });
  expect(b).not.toBe(a);
  // Past the bound a new text runs unnamed (''), and the known ones keep their names.
  expect(name({ sql: 'SELECT 3' })).toBe('');
  expect(name({ sql: 'SELECT 2' })).toBe(b);
});

test('warm() opens connections that stay open, and their preparation writes nothing', async () => {
  const { prisma, warm } = createDatabase(db.url, 10, { prepareEach: CommentStore.prepareOn });
  const observer = new Client({ connectionString: db.url });
  await observer.connect();
  try {
    await warm(3);
    const sessions = await observer.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid()`,
    );
    expect(Number(sessions.rows[0]!.n)).toBeGreaterThanOrEqual(3);
    const written = await observer.query<{ c: string; e: string; h: string }>(
      `SELECT (SELECT count(*) FROM comments) AS c, (SELECT count(*) FROM stream_events) AS e,
              (SELECT count(*) FROM stream_heads) AS h`,
    );
    expect(written.rows[0]).toEqual({ c: '0', e: '0', h: '0' });
  } finally {
    await observer.end();
    await prisma.$disconnect();
  }
});

/** Holds `n` pool connections at once; each reports its backend and whether it has the hot insert prepared. */
async function preparedOnEachConnection(
  query: ReturnType<typeof createDatabase>['query'],
  n: number,
) {
  return Promise.all(
    Array.from({ length: n }, () =>
      query<{ pid: number; prepared: boolean }>(
        `SELECT pg_backend_pid() AS pid, pg_sleep(0.2) IS NULL AS slept,
                EXISTS (SELECT 1 FROM pg_prepared_statements
                        -- split, or this statement (prepared too) would match itself
                        WHERE statement LIKE '%INSERT INTO ' || 'comments%') AS prepared`,
        [],
      ).then((rows) => rows[0]!),
    ),
  );
}

test('every connection the pool opens has the hot insert prepared before its first use, not only the warmed ones', async () => {
  const { prisma, query, warm } = createDatabase(db.url, 4, {
    prepareEach: CommentStore.prepareOn,
  });
  try {
    await warm(1);
    // Four at once: one warmed connection and three the pool opens for these queries.
    const seen = await preparedOnEachConnection(query, 4);
    expect(new Set(seen.map((s) => s.pid)).size).toBe(4);
    expect(seen.map((s) => s.prepared)).toEqual([true, true, true, true]);
  } finally {
    await prisma.$disconnect();
  }
});

test('a preparation that fails leaves the connection usable: its requests still run', async () => {
  const { prisma, query, warm } = createDatabase(db.url, 2, {
    prepareEach: () => Promise.reject(new Error('boom')),
  });
  try {
    await expect(warm(2)).resolves.toBeUndefined();
    const seen = await preparedOnEachConnection(query, 2);
    expect(seen.map((s) => s.prepared)).toEqual([false, false]);
  } finally {
    await prisma.$disconnect();
  }
  const down = createDatabase('postgresql://postgres@127.0.0.1:1/none', 2, {
    prepareEach: CommentStore.prepareOn,
  });
  try {
    await expect(down.warm(2)).resolves.toBeUndefined();
  } finally {
    await down.prisma.$disconnect();
  }
});
