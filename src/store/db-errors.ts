import { Prisma } from '../generated/prisma/client';

/** P2002: a unique constraint refused the write. */
export const isUniqueViolation = (err: unknown): boolean =>
  err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002';

/**
 * A foreign key refused the write: P2003 from model queries, PostgreSQL's 23503 as Prisma
 * reports it through a raw query, or pg's own error for a statement run on the pool.
 */
export function isForeignKeyViolation(err: unknown): boolean {
  const text = err instanceof Error ? err.message : String(err);
  return (
    (err as { code?: unknown } | null)?.code === '23503' ||
    (err instanceof Prisma.PrismaClientKnownRequestError &&
      (err.code === 'P2003' || (err.meta as { code?: string } | undefined)?.code === '23503')) ||
    /23503|foreign key/i.test(text)
  );
}

// Recognising an unreachable database needs no driver import, and the HTTP layer (which may
// not import the store) answers it 503: it lives with the domain's failures.
export { isDatabaseUnavailable } from '../domain/storage-unavailable';
