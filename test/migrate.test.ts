import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import { Client } from 'pg';
import { PrismaClient } from '../src/generated/prisma/client';
import { MigrationError, PRISMA_MIGRATION_LOCK_KEY, runMigrations } from '../src/store/migrate';
import { runMigrateCli } from './support/migrate-cli';
import { createEmptyTestDatabase, type TestDatabase } from '../harness/test-db';
import { waitFor } from '../harness/wait';

const REPO = path.resolve(__dirname, '..');
const MIGRATIONS = path.join(REPO, 'prisma', 'migrations');
const INIT = '20261126000000_init';
/** Every migration of prisma/migrations, in the order they apply. */
const ALL = fs
  .readdirSync(MIGRATIONS)
  .filter((name) => /^\d+_/.test(name))
  .sort();

const databases: TestDatabase[] = [];
const tempDirs: string[] = [];

async function emptyDb(): Promise<TestDatabase> {
  const db = await createEmptyTestDatabase();
  databases.push(db);
  return db;
}

async function query<T extends object>(url: string, sql: string, params: unknown[] = []) {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** A copy of prisma/migrations plus extra migrations, to try histories without touching the real one. */
function migrationsWith(extra: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tc-migrations-'));
  tempDirs.push(dir);
  fs.cpSync(MIGRATIONS, dir, { recursive: true });
  for (const [name, sql] of Object.entries(extra)) {
    fs.mkdirSync(path.join(dir, name));
    fs.writeFileSync(path.join(dir, name, 'migration.sql'), sql);
  }
  return dir;
}

async function tableExists(url: string, table: string): Promise<boolean> {
  const rows = await query<{ found: string | null }>(url, 'SELECT to_regclass($1)::text AS found', [
    `public.${table}`,
  ]);
  return rows[0]?.found != null;
}

/** Tables and their columns as declared in prisma/schema.prisma (relation fields excluded). */
function schemaTables(): Map<string, Set<string>> {
  const text = fs.readFileSync(path.join(REPO, 'prisma', 'schema.prisma'), 'utf8');
  const blocks = [...text.matchAll(/^model (\w+) \{([\s\S]*?)^\}/gm)];
  const models = new Set(blocks.map((b) => b[1]!));
  const tables = new Map<string, Set<string>>();
  for (const [, model, body] of blocks) {
    let table = model!;
    const columns = new Set<string>();
    for (const raw of body!.split('\n')) {
      const line = raw.trim();
      if (!line || line.startsWith('//')) continue;
      const mapped = /^@@map\("([^"]+)"\)/.exec(line);
      if (mapped) table = mapped[1]!;
      if (line.startsWith('@@')) continue;
      const [field, type] = line.split(/\s+/);
      const baseType = type!.replace(/[?[\]]/g, '');
      if (type!.endsWith('[]') || models.has(baseType)) continue;
      columns.add(/@map\("([^"]+)"\)/.exec(line)?.[1] ?? field!);
    }
    tables.set(table, columns);
  }
  return tables;
}

const runCli = (env: Record<string, string | undefined>) => runMigrateCli(env, 90_000);

afterEach(async () => {
  await Promise.all(databases.splice(0).map((db) => db.drop()));
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('runMigrations', () => {
  test('a fresh database gets every table and column of schema.prisma', async () => {
    const db = await emptyDb();
    const result = await runMigrations({ connectionString: db.url });
    expect(result).toEqual({ applied: ALL, warnings: [] });

    const rows = await query<{ table_name: string; column_name: string }>(
      db.url,
      `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'`,
    );
    const actual = new Map<string, Set<string>>();
    for (const row of rows) {
      if (!actual.has(row.table_name)) actual.set(row.table_name, new Set());
      actual.get(row.table_name)!.add(row.column_name);
    }
    const expected = schemaTables();
    expected.set(
      '_prisma_migrations',
      new Set([
        'id',
        'checksum',
        'finished_at',
        'migration_name',
        'logs',
        'rolled_back_at',
        'started_at',
        'applied_steps_count',
      ]),
    );
    expect(expected.size).toBeGreaterThanOrEqual(8);
    const sorted = (m: Map<string, Set<string>>) =>
      Object.fromEntries(
        [...m].sort(([a], [b]) => a.localeCompare(b)).map(([t, c]) => [t, [...c].sort()]),
      );
    expect(sorted(actual)).toEqual(sorted(expected));
  });

  test('the generated Prisma client works against the migrated schema', async () => {
    const db = await emptyDb();
    await runMigrations({ connectionString: db.url });
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) });
    try {
      await prisma.user.create({ data: { id: 1, username: 'creator', isCreator: true } });
      await prisma.user.create({ data: { id: 2, username: 'listener' } });
      await prisma.album.create({ data: { id: 10, title: 'A', createdById: 1 } });
      await prisma.track.create({ data: { id: 't-1', title: 'T', albumId: 10, durationS: 61.5 } });
      const comment = await prisma.comment.create({
        data: {
          trackId: 't-1',
          userId: 2,
          content: 'hi',
          timestamp: 3.25,
          mentions: { create: [{ userId: 1 }] },
        },
      });
      await prisma.comment.create({
        data: {
          trackId: 't-1',
          userId: 1,
          content: 'reply',
          timestamp: 3.25,
          parentId: comment.id,
        },
      });
      await prisma.streamHead.create({ data: { stream: 'track:t-1', lastSeq: 1n } });
      await prisma.streamEvent.create({
        data: { stream: 'track:t-1', seq: 1n, type: 'comment.created', data: { id: comment.id } },
      });

      await expect(
        prisma.user.create({ data: { id: 3, username: 'creator' } }),
      ).rejects.toMatchObject({ code: 'P2002' });
      // Restrict: an album with tracks cannot go; cascade: a deleted track takes its comments and mentions.
      await expect(prisma.album.delete({ where: { id: 10 } })).rejects.toThrow();
      await prisma.track.delete({ where: { id: 't-1' } });
      expect(await prisma.comment.count()).toBe(0);
      expect(await prisma.mention.count()).toBe(0);
      const event = await prisma.streamEvent.findUniqueOrThrow({
        where: { stream_seq: { stream: 'track:t-1', seq: 1n } },
      });
      expect(event).toMatchObject({ data: { id: comment.id }, publishedAt: null });
    } finally {
      await prisma.$disconnect();
    }
  });

  test('a second run applies nothing; the history holds the sha256 of migration.sql', async () => {
    const db = await emptyDb();
    await runMigrations({ connectionString: db.url });
    const again = await runMigrations({ connectionString: db.url });
    expect(again).toEqual({ applied: [], warnings: [] });

    const rows = await query<{
      migration_name: string;
      checksum: string;
      finished: boolean;
      applied_steps_count: number;
    }>(
      db.url,
      `SELECT migration_name, checksum, finished_at IS NOT NULL AS finished, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name`,
    );
    const sha = (name: string) =>
      createHash('sha256')
        .update(fs.readFileSync(path.join(MIGRATIONS, name, 'migration.sql')))
        .digest('hex');
    expect(rows).toEqual(
      ALL.map((name) => ({
        migration_name: name,
        checksum: sha(name),
        finished: true,
        applied_steps_count: 1,
      })),
    );
  });

  test('an unfinished migration in the history makes it refuse and change nothing', async () => {
    const db = await emptyDb();
    await runMigrations({ connectionString: db.url });
    await query(db.url, `UPDATE "_prisma_migrations" SET finished_at = NULL`);
    const dir = migrationsWith({ '20261201000000_extra': 'CREATE TABLE "extra" ("id" INTEGER);' });

    const run = runMigrations({ connectionString: db.url, migrationsDir: dir });
    await expect(run).rejects.toThrow(MigrationError);
    await expect(run).rejects.toThrow(
      new RegExp(`migration ${INIT} started at .* but never finished`),
    );
    expect(await tableExists(db.url, 'extra')).toBe(false);
    const rows = await query<{ n: string }>(
      db.url,
      `SELECT count(*) AS n FROM "_prisma_migrations"`,
    );
    expect(rows[0]!.n).toBe(String(ALL.length));
  });

  test('a failing migration is rolled back, recorded as unfinished, and blocks later runs', async () => {
    const db = await emptyDb();
    const dir = migrationsWith({
      '20261201000000_broken':
        'CREATE TABLE "half_done" ("id" INTEGER);\nSELECT * FROM "no_such_table";\n',
    });
    await expect(runMigrations({ connectionString: db.url, migrationsDir: dir })).rejects.toThrow(
      /migration 20261201000000_broken failed and was rolled back: .*no_such_table/,
    );
    expect(await tableExists(db.url, 'users')).toBe(true);
    expect(await tableExists(db.url, 'half_done')).toBe(false);
    const rows = await query<{ migration_name: string; finished: boolean; logs: string | null }>(
      db.url,
      `SELECT migration_name, finished_at IS NOT NULL AS finished, logs FROM "_prisma_migrations" ORDER BY migration_name`,
    );
    expect(rows).toEqual([
      ...ALL.map((name) => ({ migration_name: name, finished: true, logs: null })),
      {
        migration_name: '20261201000000_broken',
        finished: false,
        logs: expect.stringContaining('no_such_table'),
      },
    ]);
    await expect(runMigrations({ connectionString: db.url, migrationsDir: dir })).rejects.toThrow(
      /20261201000000_broken .*never finished/,
    );
  });

  test('a migration edited after it was applied gives a warning, not a failure', async () => {
    const db = await emptyDb();
    await runMigrations({ connectionString: db.url });
    const dir = migrationsWith({});
    fs.appendFileSync(path.join(dir, INIT, 'migration.sql'), '\n-- edited\n');
    const warned: string[] = [];
    const result = await runMigrations({
      connectionString: db.url,
      migrationsDir: dir,
      logger: { info: () => undefined, warn: (msg) => warned.push(msg) },
    });
    expect(result.applied).toEqual([]);
    expect(result.warnings).toEqual([`the migration ${INIT} was modified after it was applied`]);
    expect(warned).toEqual(result.warnings);
  });

  test('two runners started together both succeed and the migration is applied once', async () => {
    const db = await emptyDb();
    const results = await Promise.all([
      runMigrations({ connectionString: db.url }),
      runMigrations({ connectionString: db.url }),
    ]);
    expect(results.map((r) => r.applied).sort()).toEqual([[], ALL]);
    const rows = await query<{ n: string }>(
      db.url,
      `SELECT count(*) AS n FROM "_prisma_migrations"`,
    );
    expect(rows[0]!.n).toBe(String(ALL.length));
  });

  test("a runner waits while another holds Prisma's migration lock", async () => {
    const db = await emptyDb();
    const holder = new Client({ connectionString: db.url });
    await holder.connect();
    let run: Promise<unknown> | undefined;
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATION_LOCK_KEY]);
      const messages: string[] = [];
      run = runMigrations({ connectionString: db.url, logger: { info: (m) => messages.push(m) } });
      // Wait until the runner is queued on the lock (an ungranted advisory lock request).
      await waitFor(
        async () => {
          const waiting = await holder.query(
            `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted`,
            [PRISMA_MIGRATION_LOCK_KEY],
          );
          return (waiting.rowCount ?? 0) > 0;
        },
        { what: 'the runner to wait for the lock', timeoutMs: 20_000, intervalMs: 50 },
      );
      expect(messages).toEqual([
        'another process is applying migrations; waiting for it to finish',
      ]);
      expect(await tableExists(db.url, '_prisma_migrations')).toBe(false);
      await holder.query('SELECT pg_advisory_unlock($1)', [PRISMA_MIGRATION_LOCK_KEY]);
      await expect(run).resolves.toEqual({ applied: ALL, warnings: [] });
    } finally {
      await holder.end();
      await run?.catch(() => undefined);
    }
  });
});

describe('npm run db:migrate (migrate-cli)', () => {
  test('two CLI processes against DATABASE_URL apply the migration once and never print the password', async () => {
    const db = await emptyDb();
    const url = new URL(db.url);
    url.password = 'pw-s3cret-42';
    const env = { DATABASE_URL: url.toString() };
    const runs = await Promise.all([runCli(env), runCli(env)]);
    for (const run of runs) {
      expect(run).toMatchObject({ code: 0, stderr: '' });
      expect(run.stdout).toContain('postgresql://postgres:***@127.0.0.1');
      expect(run.stdout).not.toContain('pw-s3cret-42');
    }
    const outputs = runs.map((r) => r.stdout).sort();
    expect(outputs[0]).toContain(`applied ${ALL.length} migration(s): ${ALL.join(', ')}\n`);
    expect(outputs[1]).toMatch(/no pending migrations/);
    const rows = await query<{ n: string }>(
      db.url,
      `SELECT count(*) AS n FROM "_prisma_migrations"`,
    );
    expect(rows[0]!.n).toBe(String(ALL.length));
  });

  test('the CLI exits 1 with a one-line reason, without the password, when the database is unreachable', async () => {
    const run = await runCli({
      DATABASE_URL: 'postgresql://postgres:pw-s3cret-42@127.0.0.1:1/nowhere',
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^db:migrate failed: connect ECONNREFUSED 127\.0\.0\.1:1\n$/);
    expect(run.stderr).not.toContain('pw-s3cret-42');
  });
});
