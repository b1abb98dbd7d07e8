import type { Logger } from 'pino';
import type { Config } from '../config/config';
import { startEmbeddedDatabase } from '../store/embedded-db';
import { runMigrations } from '../store/migrate';
import { CommentStore } from '../store/comment-store';
import { createDatabase, type Database } from '../store/prisma';

/** The service's database, whichever kind the configuration asks for. */
export interface ServiceDatabase extends Database {
  /** True for the embedded PGlite default (no DATABASE_URL). */
  embedded: boolean;
  /** Whether the database answers a trivial query (for /readyz). */
  answers(): Promise<boolean>;
  /** Ends the pool, then stops the embedded database if there is one; never throws. */
  close(): Promise<void>;
}

/**
 * PostgreSQL at DATABASE_URL, or PGlite served on loopback (migrated at start) so that both
 * take the same Prisma path.
 */
export async function openDatabase(config: Config, logger: Logger): Promise<ServiceDatabase> {
  let connectionString = config.databaseUrl;
  let poolSize = 10;
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (!connectionString) {
    const db = await startEmbeddedDatabase({ dataDir: config.dataDir });
    connectionString = db.connectionString;
    poolSize = db.maxConnections;
    stopEmbedded = db.stop;
    await runMigrations({ connectionString, logger: { info: (m) => logger.info(m) } });
  }
  const { prisma, query, warm } = createDatabase(connectionString, poolSize, {
    preparedStatements: config.dbPreparedStatements,
    // Unnamed statements are parsed and planned on every run: nothing to prepare ahead.
    ...(config.dbPreparedStatements ? { prepareEach: CommentStore.prepareOn } : {}),
  });
  return {
    prisma,
    query,
    warm,
    embedded: stopEmbedded !== undefined,
    answers: () =>
      prisma.$queryRaw`SELECT 1`.then(
        () => true,
        () => false,
      ),
    async close() {
      await prisma.$disconnect().catch(() => undefined);
      await stopEmbedded?.().catch(() => undefined);
    },
  };
}
