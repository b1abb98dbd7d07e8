import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { loadConfig } from '../../src/config/config';
import { startServer, type RunningServer } from '../../src/server';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../src/store/embedded-db';
import { runMigrations } from '../../src/store/migrate';
import { embeddedTestEnv, testEnv } from './rest-env';
import { createTestDatabase } from '../../harness/test-db';

/**
 * A migrated database a test owns, to run the same checks on both kinds the service
 * supports: a fresh PostgreSQL database, or an embedded one in a temporary DATA_DIR.
 */
export interface DbTarget {
  kind: 'PostgreSQL' | 'embedded';
  /** Connection URL (while the test holds it: the embedded database is then the server's). */
  url: string;
  /**
   * Starts the real server on this database. The embedded database is stopped first and
   * opened by the server from DATA_DIR, as in the embedded default.
   */
  startServer(extraEnv?: Record<string, string>): Promise<RunningServer>;
  /** Stops what it started (servers included) and removes the database; safe to call twice. */
  close(): Promise<void>;
}

export type DbTargetFactory = () => Promise<DbTarget>;

function withServers(
  kind: DbTarget['kind'],
  url: string,
  envFor: (extra: Record<string, string>) => NodeJS.ProcessEnv,
  beforeServer: () => Promise<void>,
  release: () => Promise<void>,
): DbTarget {
  const servers: RunningServer[] = [];
  let closing: Promise<void> | undefined;
  return {
    kind,
    url,
    async startServer(extra = {}) {
      await beforeServer();
      const running = await startServer(loadConfig(envFor(extra)), { quiet: true });
      servers.push(running);
      return running;
    },
    close: () =>
      (closing ??= (async () => {
        for (const s of servers.splice(0)) await s.shutdown('test').catch(() => undefined);
        await release();
      })()),
  };
}

export const postgresTarget: DbTargetFactory = async () => {
  const db = await createTestDatabase();
  return withServers(
    'PostgreSQL',
    db.url,
    (extra) => testEnv(db.url, extra),
    async () => undefined,
    () => db.drop(),
  );
};

export const embeddedTarget: DbTargetFactory = async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tc-db-target-'));
  let embedded: EmbeddedDatabase | undefined;
  const release = async () => {
    await embedded?.stop().catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    embedded = await startEmbeddedDatabase({ dataDir });
    await runMigrations({ connectionString: embedded.connectionString });
  } catch (err) {
    await release();
    throw err;
  }
  const db = embedded;
  return withServers(
    'embedded',
    db.connectionString,
    (extra) => embeddedTestEnv(dataDir, extra),
    () => db.stop(),
    release,
  );
};

/** Both kinds, for `describe.each`. */
export const DB_TARGETS: [DbTarget['kind'], DbTargetFactory][] = [
  ['PostgreSQL', postgresTarget],
  ['embedded', embeddedTarget],
];

/** Runs `fn` on one plain connection to `url` (closed after, also on failure). */
export async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
