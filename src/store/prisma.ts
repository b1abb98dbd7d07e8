import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client';

export type Db = PrismaClient;
/** The client handed to a `$transaction` callback. */
export type Tx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

/** One Prisma client over the Postgres driver adapter: the same path for PostgreSQL and the embedded PGlite. */
export function createPrisma(connectionString: string, maxConnections = 10): PrismaClient {
  // With one connection (the embedded database) transactions queue for it: wait longer than Prisma's 2 s.
  const single = maxConnections === 1;
  const adapter = new PrismaPg({
    connectionString,
    max: maxConnections,
    ...(single ? { idleTimeoutMillis: 0 } : {}),
  });
  return new PrismaClient({
    adapter,
    transactionOptions: { maxWait: single ? 30_000 : 5_000, timeout: 15_000 },
  });
}
