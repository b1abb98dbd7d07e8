import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino, { type Logger } from 'pino';
import { pinoHttp } from 'pino-http';

const SECRET_PARAMS = /([?&](?:access_token|token|jwt|id_token|auth|authorization)=)[^&#]*/gi;

/** A URL fit for logs: token-like query values replaced. */
export const redactUrl = (url: string | undefined) =>
  (url ?? '').replace(SECRET_PARAMS, '$1[REDACTED]');

/**
 * The service's logger (JSON lines on stdout). Nothing logs headers or the configuration; the
 * censored fields are a safety net, kept short because each path costs time on every line.
 */
export function createLogger(level: string): Logger {
  return pino({
    level,
    redact: { paths: ['*.authorization', '*.cookie', '*.password'], censor: '[REDACTED]' },
  });
}

/** An access line's level: the app's (pino-http) and the lean paths' lines use this one rule. */
export const accessLogLevel = (status: number, failed = false): 'error' | 'warn' | 'info' =>
  failed || status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';

/** An access line's `req` field (headers are never logged). */
export const accessLogRequest = (
  id: unknown,
  method: string | undefined,
  url: string | undefined,
  ip: string | undefined,
) => ({ id, method, url: redactUrl(url), ip });

/** An access line's `res` field. */
export const accessLogResponse = (statusCode: number) => ({ statusCode });

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** The caller's `X-Request-Id` when it is well-formed, else a fresh one. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/**
 * Access logs with request ids. Headers are not logged at all (Authorization,
 * cookies and the admin token live there); the client address is `req.ip`,
 * which honours `trust proxy`.
 */
export function httpLogger(logger: Logger) {
  const accessLog = pinoHttp({
    logger,
    genReqId: (req: IncomingMessage, res: ServerResponse) => {
      const id = requestIdOf(req);
      res.setHeader('X-Request-Id', id);
      return id;
    },
    autoLogging: { ignore: (req) => /^\/(healthz|readyz|metrics)\b/.test(req.url ?? '') },
    customLogLevel: (_req, res, err) => accessLogLevel(res.statusCode, Boolean(err)),
    serializers: {
      req: (req: {
        id: unknown;
        method: string;
        url: string;
        raw: IncomingMessage & { ip?: string };
      }) =>
        accessLogRequest(req.id, req.method, req.url, req.raw.ip ?? req.raw.socket?.remoteAddress),
      res: (res: { statusCode: number }) => accessLogResponse(res.statusCode),
    },
  });
  // Named for the app's middleware stack, which test/lean-parity.test.ts reads.
  return Object.defineProperty(accessLog, 'name', { value: 'accessLog' });
}
