import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { runMigrations } from '../src/store/migrate';

/** Server that test databases are created on (trust auth on the test machine). */
export const TEST_PG_URL =
  process.env.TEST_PG_URL || 'postgresql://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  /** Connection URL of the fresh database. */
  url: string;
  /** Terminates its connections and drops it. */
  drop(): Promise<void>;
}

async function withAdminClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: TEST_PG_URL });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function dropDatabase(name: string): Promise<void> {
  await withAdminClient(async (client) => {
    await client.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [name],
    );
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  });
}

/** A freshly created, empty database `tc_test_<random>` (no migrations applied). */
export async function createEmptyTestDatabase(): Promise<TestDatabase> {
  const name = `tc_test_${randomBytes(6).toString('hex')}`;
  await withAdminClient((client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(TEST_PG_URL);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    url: url.toString(),
    drop: () => (dropped ??= dropDatabase(name)),
  };
}

/** A fresh database `tc_test_<random>` with every migration of prisma/migrations applied. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const db = await createEmptyTestDatabase();
  try {
    await runMigrations({ connectionString: db.url });
  } catch (error) {
    await db.drop();
    throw error;
  }
  return db;
}
