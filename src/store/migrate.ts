import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';

/**
 * A Prisma-compatible `migrate deploy`: applies prisma/migrations/<name>/migration.sql files
 * that are not yet recorded in `_prisma_migrations`, in directory-name order, keeping that table
 * exactly as Prisma does so Prisma's own CLI agrees with the result. It exists because Prisma 7's
 * CLI needs a native schema engine that cannot be downloaded offline (see notes/prisma-offline.md).
 */

export interface MigrationLogger {
  info(msg: string): void;
  warn?(msg: string): void;
}

export interface RunMigrationsOptions {
  connectionString: string;
  /** Default: <repo>/prisma/migrations. */
  migrationsDir?: string;
  logger?: MigrationLogger;
}

export interface RunMigrationsResult {
  /** Names of the migrations this call applied, in order (empty when up to date). */
  applied: string[];
  /** Non-fatal findings, e.g. a migration file edited after it was applied. */
  warnings: string[];
}

/** A migration could not be applied or the history forbids applying any; the message says why. */
export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** The advisory lock key Prisma's schema engine takes while migrating (shared with Prisma). */
export const PRISMA_MIGRATION_LOCK_KEY = 72707369;

export interface LocalMigration {
  name: string;
  sql: string;
  /** Lowercase hex SHA-256 of the migration.sql bytes, as Prisma stores it. */
  checksum: string;
}

interface AppliedRow {
  id: string;
  checksum: string;
  migration_name: string;
  started_at: Date;
  finished_at: Date | null;
}

// Prisma's own definition of the table, so `prisma migrate status` can read what we write.
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

/** <repo>/prisma/migrations, found by walking up from this file (works from src/ and from dist/). */
export function defaultMigrationsDir(): string {
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'prisma', 'migrations');
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve(__dirname, '../../prisma/migrations');
    dir = parent;
  }
}

export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The migrations of a Prisma migrations directory, in the order Prisma applies them. */
export function readLocalMigrations(migrationsDir: string): LocalMigration[] {
  if (!existsSync(migrationsDir)) {
    throw new MigrationError(`migrations directory not found: ${migrationsDir}`);
  }
  const names = readdirSync(migrationsDir)
    .filter((name) => statSync(path.join(migrationsDir, name)).isDirectory())
    // Plain code-unit order, as Prisma sorts them (timestamp prefixes make it chronological).
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return names.map((name) => {
    const file = path.join(migrationsDir, name, 'migration.sql');
    if (!existsSync(file)) {
      throw new MigrationError(`migration ${name} has no migration.sql (${file})`);
    }
    const bytes = readFileSync(file);
    return { name, sql: bytes.toString('utf8'), checksum: sha256Hex(bytes) };
  });
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/**
 * Applies pending migrations, each in its own transaction, while holding Prisma's advisory lock
 * so replicas starting together apply each migration exactly once. Refuses to do anything when
 * the history holds a migration that started but never finished (as `prisma migrate deploy`
 * does, error P3009). Uses one connection, which the embedded database (one client at a time)
 * also supports.
 */
export async function runMigrations(opts: RunMigrationsOptions): Promise<RunMigrationsResult> {
  const migrationsDir = opts.migrationsDir ?? defaultMigrationsDir();
  const logger = opts.logger;
  const local = readLocalMigrations(migrationsDir);
  const warnings: string[] = [];
  const warn = (msg: string) => {
    warnings.push(msg);
    if (logger?.warn) logger.warn(msg);
    else logger?.info(`warning: ${msg}`);
  };

  const client = new Client({ connectionString: opts.connectionString });
  // A dropped connection is reported by the failing query; without a listener it would crash the process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    const gotLock = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock($1) AS locked',
      [PRISMA_MIGRATION_LOCK_KEY],
    );
    if (!gotLock.rows[0]?.locked) {
      logger?.info('another process is applying migrations; waiting for it to finish');
      await client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATION_LOCK_KEY]);
    }
    try {
      const applied = await applyPending(client, local, warn, logger);
      return { applied, warnings };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_MIGRATION_LOCK_KEY]);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function applyPending(
  client: Client,
  local: LocalMigration[],
  warn: (msg: string) => void,
  logger: MigrationLogger | undefined,
): Promise<string[]> {
  await client.query(CREATE_MIGRATIONS_TABLE);
  // Rows marked rolled back (`prisma migrate resolve --rolled-back`) no longer count, as in Prisma.
  const { rows } = await client.query<AppliedRow>(
    `SELECT id, checksum, migration_name, started_at, finished_at
       FROM "_prisma_migrations"
      WHERE rolled_back_at IS NULL
      ORDER BY started_at, migration_name`,
  );

  const unfinished = rows.find((row) => row.finished_at === null);
  if (unfinished) {
    throw new MigrationError(
      `migration ${unfinished.migration_name} started at ${unfinished.started_at.toISOString()} ` +
        'but never finished (it failed or was interrupted), so no migrations were applied; ' +
        'check the database and fix the cause, then mark it rolled back with ' +
        `\`npx prisma migrate resolve --rolled-back ${unfinished.migration_name}\` or ` +
        `DELETE FROM "_prisma_migrations" WHERE id = '${unfinished.id}', and run again`,
    );
  }

  const appliedByName = new Map(rows.map((row) => [row.migration_name, row]));
  const localNames = new Set(local.map((m) => m.name));
  for (const row of rows) {
    if (!localNames.has(row.migration_name)) {
      warn(`migration ${row.migration_name} is recorded in the database but missing locally`);
    }
  }

  const applied: string[] = [];
  for (const migration of local) {
    const existing = appliedByName.get(migration.name);
    if (existing) {
      if (existing.checksum !== migration.checksum) {
        warn(`the migration ${migration.name} was modified after it was applied`);
      }
      continue;
    }
    await applyOne(client, migration);
    applied.push(migration.name);
    logger?.info(`applied migration ${migration.name}`);
  }
  return applied;
}

async function applyOne(client: Client, migration: LocalMigration): Promise<void> {
  const id = randomUUID();
  // Recorded before (and outside) the migration's transaction, as Prisma does: if the process
  // dies midway, the unfinished row stops later runs instead of silently retrying.
  await client.query(
    `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count)
     VALUES ($1, $2, $3, now(), 0)`,
    [id, migration.checksum, migration.name],
  );
  try {
    await client.query('BEGIN');
    await client.query(migration.sql);
    await client.query(
      `UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`,
      [id],
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    const reason = oneLine(error instanceof Error ? error.message : String(error));
    await client
      .query(`UPDATE "_prisma_migrations" SET logs = $2 WHERE id = $1`, [id, reason])
      .catch(() => undefined);
    throw new MigrationError(`migration ${migration.name} failed and was rolled back: ${reason}`);
  }
}
