/**
 * The contract's error body (section 4), for every refusal: REST answers, refused streams and
 * requests Node's parser rejected. Built here only; the HTTP layer maps failures to statuses.
 */
export interface ErrorBody {
  error: { code: string; message: string };
}

export const errorBody = (code: string, message: string): ErrorBody => ({
  error: { code, message },
});

/** `503 unavailable` (contract section 4): the database or bus cannot be reached; retry soon. */
export const UNAVAILABLE = {
  code: 'unavailable',
  message: 'the service is temporarily unavailable; retry shortly',
  retryAfterS: 1,
} as const;
