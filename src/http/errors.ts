import type { ErrorRequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { AuthError } from '../auth/authenticate';
import { DomainError } from '../domain/types';

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
export const notFound = (message = 'not found') => new HttpError(404, 'not_found', message);

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
  res.status(status).set(headers).json({ error: { code, message } });
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

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    if (err instanceof HttpError)
      return sendError(res, err.status, err.code, err.message, err.headers);
    if (err instanceof DomainError || err instanceof AuthError) {
      return sendError(res, err.status, err.code, err.message);
    }
    if (err instanceof z.ZodError)
      return sendError(res, 400, 'invalid_input', describeZodError(err));
    const bp = err as BodyParserError;
    switch (bp?.type) {
      case 'entity.too.large':
        return sendError(res, 413, 'payload_too_large', 'request body is too large');
      case 'entity.parse.failed':
        return sendError(res, 400, 'invalid_json', 'request body is not valid JSON');
      case 'charset.unsupported':
      case 'encoding.unsupported':
        return sendError(
          res,
          415,
          'unsupported_media_type',
          'unsupported body encoding or charset',
        );
      case 'request.aborted':
        return;
    }
    if (typeof bp?.status === 'number' && bp.status >= 400 && bp.status < 500) {
      return sendError(res, bp.status, 'bad_request', 'bad request');
    }
    logger.error({ err, method: req.method, route: req.route?.path }, 'unhandled error');
    sendError(res, 500, 'internal_error', 'internal error');
  };
}
