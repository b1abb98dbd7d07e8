import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client';

export type Db = PrismaClient;
/** The client handed to a `$transaction` callback. */
export type Tx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

/** Runs one SQL statement with positional parameters ($1 …) and returns its rows. */
export type SqlQuery = <R>(text: string, values: unknown[]) => Promise<R[]>;

/** The database as the stores see it. */
export interface Database {
  prisma: PrismaClient;
  /**
   * The same connections without Prisma's layer, for the hot write's one raw statement:
   * Prisma's parameter and result mapping cost ~0.35 ms of CPU per call, as much as pg's.
   */
  query: SqlQuery;
  /**
   * Opens up to `connections` pool connections at once (each prepared as every new one is,
   * see `prepareEach`); they are then kept open. Never throws: a database that is down is met
   * by the first request as before.
   */
  warm(connections: number): Promise<void>;
}

/**
 * One pg pool, used by Prisma through the Postgres driver adapter (the same path for
 * PostgreSQL and the embedded PGlite) and by `query`. `prisma.$disconnect()` ends the pool.
 */
export function createDatabase(
  connectionString: string,
  maxConnections = 10,
  opts: {
    preparedStatements?: boolean;
    /**
     * Run on every new connection before its first use (the hot statements, so that no
     * request pays for parsing and planning them). A failure is ignored: the connection is
     * used as it is and its first request prepares what it runs.
     */
    prepareEach?: (query: SqlQuery) => Promise<void>;
  } = {},
): Database {
  // With one connection (the embedded database) transactions queue for it: wait longer than Prisma's 2 s.
  const single = maxConnections === 1;
  const warmConnections = Math.min(WARM_CONNECTIONS, maxConnections);
  const names = opts.preparedStatements === false ? undefined : preparedStatementNames();
  const prepareEach = opts.prepareEach;
  const pool = new pg.Pool({
    connectionString,
    max: maxConnections,
    // Connections warmed at start stay open: opening one (a backend fork, then parsing and
    // planning each statement anew) under the first load was the cold-start tail.
    min: single ? 0 : warmConnections,
    ...(single ? { idleTimeoutMillis: 0 } : {}),
    // Every connection, not only the warmed ones: those the pool opens later (when streams
    // connect) are the most recently released, so the pool hands them to the next requests.
    ...(prepareEach
      ? { onConnect: (client: pg.ClientBase) => prepareEach(queryOn(client)).catch(noop) }
      : {}),
  });
  // An idle connection that breaks is dropped by the pool; the next query opens another.
  pool.on('error', noop);
  const adapter = new PrismaPg(pool, {
    disposeExternalPool: true,
    ...(names ? { statementNameGenerator: names } : {}),
  });
  const prisma = new PrismaClient({
    adapter,
    transactionOptions: { maxWait: single ? 30_000 : 5_000, timeout: 15_000 },
  });
  /** Statements on the pool, or on one connection of it (preparation). */
  function queryOn(target: pg.Pool | pg.ClientBase): SqlQuery {
    return async <R>(text: string, values: unknown[]) => {
      // Named like Prisma's statements (same bound); '' is pg's unnamed statement.
      const name = names?.({ sql: text }) || undefined;
      return (await target.query({ name, text, values })).rows as R[];
    };
  }
  const query = queryOn(pool);
  const warm = async (connections: number) => {
    const n = Math.min(connections, warmConnections);
    const clients = await Promise.all(
      Array.from({ length: n }, () => pool.connect().catch(() => null)),
    );
    for (const client of clients) client?.release();
  };
  return { prisma, query, warm };
}

function noop(): void {}

/** Pool connections opened and prepared at start (`Database.warm`), and kept open. */
export const WARM_CONNECTIONS = 4;

/** A Prisma client alone (tools and tests that need no raw statement). */
export function createPrisma(
  connectionString: string,
  maxConnections = 10,
  opts: { preparedStatements?: boolean } = {},
): PrismaClient {
  return createDatabase(connectionString, maxConnections, opts).prisma;
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
