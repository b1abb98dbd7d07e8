/**
 * Repositories throw their driver's errors as they are when the database cannot be reached;
 * this tells those apart from a refused statement (by shape: no driver is imported), so that
 * callers answer "retry shortly" (the contract's `503 unavailable`) instead of failing.
 */

/** Node's socket errors for a server that cannot be reached or dropped the connection. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs of a server that is not serving: class 08 (connection exception), shutting down
 * or starting up (57P01-57P03), and no connection slot left (53300, which the embedded
 * database also answers while its one connection is taken).
 */
const UNAVAILABLE_SQLSTATE = /^(08[0-9A-Z]{3}|57P0[123]|53300)$/;

/** pg's own errors for a connection that closed or never opened (they carry no code). */
const PG_CONNECTION_MESSAGE =
  /^(Connection terminated|Client has encountered a connection error|Client was closed|timeout exceeded when trying to connect)/;

/** Prisma's codes for the same: can't reach, timed out, connection closed, no pooled connection. */
const PRISMA_CODES = new Set(['P1001', 'P1002', 'P1017', 'P2024']);

/** How the Postgres driver adapter classifies a failure it saw (in Prisma's error `meta`). */
const ADAPTER_KINDS = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
]);

interface ErrorFields {
  code?: unknown;
  /** The SQLSTATE under the Postgres driver adapter's own classification. */
  originalCode?: unknown;
  message?: unknown;
  kind?: unknown;
  cause?: unknown;
  meta?: { driverAdapterError?: { cause?: unknown } };
}

/**
 * The database could not be reached or is not serving, as opposed to refusing a statement:
 * what the contract answers `503 unavailable`, never 500. Reads pg's errors, PostgreSQL's
 * SQLSTATEs and Prisma's wrappings of both (its code, the adapter's `kind`, the cause chain).
 */
export function isDatabaseUnavailable(err: unknown, depth = 0): boolean {
  if (typeof err !== 'object' || err === null || depth > 3) return false;
  const e = err as ErrorFields;
  if (typeof e.code === 'string') {
    if (NETWORK_CODES.has(e.code) || UNAVAILABLE_SQLSTATE.test(e.code)) return true;
    if (PRISMA_CODES.has(e.code)) return true;
    // A transaction that could not get the connection in time (maxWait): the pool is saturated.
    if (e.code === 'P2028' && /unable to start a transaction/i.test(String(e.message))) return true;
  }
  if (typeof e.originalCode === 'string' && UNAVAILABLE_SQLSTATE.test(e.originalCode)) return true;
  if (typeof e.kind === 'string' && ADAPTER_KINDS.has(e.kind)) return true;
  if (typeof e.message === 'string' && PG_CONNECTION_MESSAGE.test(e.message)) return true;
  const adapterCause = e.meta?.driverAdapterError?.cause;
  if (adapterCause !== undefined && isDatabaseUnavailable(adapterCause, depth + 1)) return true;
  // AggregateError from a connect that tried several addresses (IPv4 and IPv6).
  if (err instanceof AggregateError && err.errors.some((x) => isDatabaseUnavailable(x, depth + 1)))
    return true;
  return e.cause !== undefined && isDatabaseUnavailable(e.cause, depth + 1);
}
