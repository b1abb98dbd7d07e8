import { Prisma } from '../generated/prisma/client';

/** P2002: a unique constraint refused the write. */
export const isUniqueViolation = (err: unknown): boolean =>
  err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002';

/**
 * A foreign key refused the write: P2003 from model queries, or PostgreSQL's 23503
 * as reported through a raw query.
 */
export function isForeignKeyViolation(err: unknown): boolean {
  const text = err instanceof Error ? err.message : String(err);
  return (
    (err instanceof Prisma.PrismaClientKnownRequestError &&
      (err.code === 'P2003' || (err.meta as { code?: string } | undefined)?.code === '23503')) ||
    /23503|foreign key/i.test(text)
  );
}
