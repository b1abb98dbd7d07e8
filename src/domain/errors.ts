/**
 * Domain failures, by code only: what went wrong, never how a transport answers it
 * (src/http/errors.ts maps each code to an HTTP status).
 */
export type DomainErrorCode =
  | 'not_found'
  | 'forbidden'
  | 'invalid_cursor'
  | 'invalid_timestamp'
  | 'invalid_parent'
  | 'too_many_mentions'
  | 'username_taken'
  | 'unknown_user'
  | 'unknown_album';

export class DomainError extends Error {
  constructor(
    readonly code: DomainErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new DomainError('not_found', `${what} not found`);

/** A reply's parent must exist on the same track (checked first, and again by the insert). */
export const invalidParent = () =>
  new DomainError('invalid_parent', 'parent_id must name a comment on this track');
