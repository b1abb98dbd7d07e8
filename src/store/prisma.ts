import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client';

export type Db = PrismaClient;
/** The client handed to a `$transaction` callback. */
export type Tx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

/** One Prisma client over the Postgres driver adapter: the same path for PostgreSQL and the embedded PGlite. */
export function createPrisma(
  connectionString: string,
  maxConnections = 10,
  opts: { preparedStatements?: boolean } = {},
): PrismaClient {
  // With one connection (the embedded database) transactions queue for it: wait longer than Prisma's 2 s.
  const single = maxConnections === 1;
  const adapter = new PrismaPg(
    {
      connectionString,
      max: maxConnections,
      ...(single ? { idleTimeoutMillis: 0 } : {}),
    },
    opts.preparedStatements === false ? {} : { statementNameGenerator: preparedStatementNames() },
  );
  return new PrismaClient({
    adapter,
    transactionOptions: { maxWait: single ? 30_000 : 5_000, timeout: 15_000 },
  });
}

/** Distinct statements kept prepared per connection; the rest run unnamed. */
const MAX_PREPARED_STATEMENTS = 500;

/**
 * Names each distinct SQL text so that pg prepares it once per connection and later
 * runs skip parsing and planning (about 0.6 ms of the comment write's 1.8 ms). Bounded:
 * texts that vary with a list's length would otherwise grow every backend's cache.
 */
export function preparedStatementNames(
  limit = MAX_PREPARED_STATEMENTS,
): (query: { sql: string }) => string {
  const names = new Map<string, string>();
  // The adapter's type says string; an empty name is pg's unnamed statement.
  return ({ sql }) => {
    let name = names.get(sql);
    if (name === undefined) {
      if (names.size >= limit) return '';
      name = `tc_${names.size}`;
      names.set(sql, name);
    }
    return name;
  };
}
