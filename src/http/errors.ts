import type { ErrorRequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { AuthError } from '../auth/authenticate';
import { DomainError, type DomainErrorCode } from '../domain/errors';
import { errorBody, UNAVAILABLE } from '../events/error-body';
import { isDatabaseUnavailable } from '../domain/storage-unavailable';

/** An error with the contract's body: `{"error":{"code","message"}}`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const badRequest = (code: string, message: string) => new HttpError(400, code, message);
export const invalidJson = () =>
  new HttpError(400, 'invalid_json', 'request body is not valid JSON');
export const notFound = (message = 'not found') => new HttpError(404, 'not_found', message);

export { errorBody } from '../events/error-body';

/** An express answer with the contract's error body. */
export function sendError(
  res: Response,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.status(status).set(headers).json(errorBody(code, message));
}

/** Turns a zod failure into one readable sentence (first issue, with its field). */
export function describeZodError(err: z.ZodError): string {
  const issue = err.issues[0];
  if (!issue) return 'invalid input';
  if (issue.code === 'unrecognized_keys') return `unknown field(s): ${issue.keys.join(', ')}`;
  const field = issue.path.join('.');
  return field ? `${field}: ${issue.message}` : issue.message;
}

interface BodyParserError {
  type?: string;
  status?: number;
}

/** The HTTP status of each domain failure (contract section 4). */
const DOMAIN_STATUS: Record<DomainErrorCode, number> = {
  not_found: 404,
  forbidden: 403,
  invalid_cursor: 400,
  invalid_timestamp: 400,
  invalid_parent: 400,
  too_many_mentions: 400,
  username_taken: 409,
  unknown_user: 400,
  unknown_album: 400,
};

const AUTH_STATUS: Record<AuthError['code'], number> = { unauthenticated: 401, forbidden: 403 };

/** The contract answer for an error: status, code, message and extra headers. */
export interface ErrorAnswer {
  status: number;
  code: string;
  message: string;
  headers?: Record<string, string>;
}

/**
 * What a failed request answers: the contract's error for known errors,
 * `'aborted'` when the client went away (nothing to answer), `null` for an
 * unexpected error (answered 500 and logged by the caller).
 */
export function errorAnswer(err: unknown): ErrorAnswer | 'aborted' | null {
  if (err instanceof HttpError)
    return { status: err.status, code: err.code, message: err.message, headers: err.headers };
  if (err instanceof DomainError)
    return { status: DOMAIN_STATUS[err.code], code: err.code, message: err.message };
  if (err instanceof AuthError)
    return { status: AUTH_STATUS[err.code], code: err.code, message: err.message };
  if (err instanceof z.ZodError)
    return { status: 400, code: 'invalid_input', message: describeZodError(err) };
  if (isDatabaseUnavailable(err)) return DATABASE_UNAVAILABLE;
  const bp = err as BodyParserError;
  switch (bp?.type) {
    case 'entity.too.large':
      return { status: 413, code: 'payload_too_large', message: 'request body is too large' };
    case 'entity.parse.failed':
      return errorAnswer(invalidJson());
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return {
        status: 415,
        code: 'unsupported_media_type',
        message: 'unsupported body encoding or charset',
      };
    case 'request.aborted':
      return 'aborted';
  }
  if (typeof bp?.status === 'number' && bp.status >= 400 && bp.status < 500) {
    return { status: bp.status, code: 'bad_request', message: 'bad request' };
  }
  return null;
}

/**
 * The database cannot be reached (contract section 4): answered at once, and the pool
 * reconnects on the next request, so a client may retry within a second.
 */
export const DATABASE_UNAVAILABLE: ErrorAnswer = {
  status: 503,
  code: UNAVAILABLE.code,
  message: UNAVAILABLE.message,
  headers: { 'Retry-After': String(UNAVAILABLE.retryAfterS) },
};

export const INTERNAL_ERROR: ErrorAnswer = {
  status: 500,
  code: 'internal_error',
  message: 'internal error',
};

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const answer = errorAnswer(err);
    if (answer === 'aborted') return;
    if (answer === null)
      logger.error({ err, method: req.method, route: req.route?.path }, 'unhandled error');
    const { status, code, message, headers } = answer ?? INTERNAL_ERROR;
    sendError(res, status, code, message, headers);
  };
}
