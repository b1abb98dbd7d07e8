import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Express, Request, Response } from 'express';
import type { Logger } from 'pino';
import type { HeaderStep } from './response-headers';
import { errorAnswer, errorBody, INTERNAL_ERROR } from './errors';
import { accessLogLevel, accessLogRequest, accessLogResponse, redactUrl } from './logging';
import { jsonBodyParser } from './validation';

/**
 * Serves one kind of request without express, or declines it. Returns true when it took the
 * request; a declined request has not been touched and goes to the app.
 */
export type FastPath = (req: IncomingMessage, res: ServerResponse) => boolean;

export type ResponseHeaders = Record<string, string | string[]>;

/**
 * What the lean paths share with the express app, so that their answers and log lines are
 * the app's: the app itself (for anything a path hands back), the client address as the app
 * sees it, the app's header middlewares (security headers, CORS) and the access-log shape.
 */
export class LeanHttp {
  readonly toApp: RequestListener;
  private readonly jsonBody = jsonBodyParser();

  constructor(
    private readonly app: Express,
    private readonly headerSteps: HeaderStep[],
    readonly logger: Logger,
  ) {
    this.toApp = (req, res) => app(req, res);
  }

  /**
   * The client address the app would log (`req.ip`, which honours `trust proxy`), from a
   * short-lived view on the app's request prototype: the request itself is left as it is.
   */
  clientIp(req: IncomingMessage): string | undefined {
    return (
      Object.create(this.app.request, {
        headers: { value: req.headers },
        socket: { value: req.socket },
      }) as Request
    ).ip;
  }

  /**
   * The headers the app's header middlewares would set, recorded rather than set on `res`:
   * they reach `writeHead` as one object, and an open stream keeps no per-response header map.
   */
  responseHeaders(req: IncomingMessage): Promise<ResponseHeaders> {
    return new Promise((resolve, reject) => {
      const recorded = new Map<string, { name: string; value: string | string[] }>();
      const recorder = {
        getHeader: (name: string) => recorded.get(name.toLowerCase())?.value,
        setHeader(name: string, value: number | string | readonly string[]) {
          const v = typeof value === 'number' ? String(value) : value;
          recorded.set(name.toLowerCase(), { name, value: Array.isArray(v) ? [...v] : String(v) });
          return recorder;
        },
        removeHeader: (name: string) => void recorded.delete(name.toLowerCase()),
      };
      const done = () => {
        const headers: ResponseHeaders = {};
        for (const { name, value } of recorded.values()) headers[name] = value;
        resolve(headers);
      };
      let i = 0;
      const next = (err?: unknown) => {
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        const step = this.headerSteps[i++];
        if (step) step(req, recorder as unknown as ServerResponse, next);
        else done();
      };
      next();
    });
  }

  /** The access-log line, shaped and levelled as the app's (pino-http) lines are. */
  logRequest(
    req: IncomingMessage,
    id: string,
    status: number,
    message: string,
    extra: Record<string, unknown> = {},
  ): void {
    const level = accessLogLevel(status);
    if (!this.logger.isLevelEnabled(level)) return;
    this.logger[level](
      {
        req: accessLogRequest(id, req.method, req.url, this.clientIp(req)),
        res: accessLogResponse(status),
        ...extra,
      },
      message,
    );
  }

  /**
   * The body, read and parsed by the app's own JSON parser (same limit, strictness and
   * errors); rejects with the parser's error, which `errorAnswer` maps as the app does.
   */
  readJsonBody(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const parsing = req as IncomingMessage & { body?: unknown };
      this.jsonBody(parsing as Request, res as Response, (err?: unknown) =>
        err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(parsing.body),
      );
    });
  }

  /** Answers with the contract's JSON (or error) body; `headers` come on top of the app's. */
  sendJson(res: ServerResponse, status: number, headers: ResponseHeaders, payload: unknown): void {
    const body = JSON.stringify(payload);
    res.writeHead(status, {
      ...headers,
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
  }

  /** Last resort when a lean path fails unexpectedly: a 500, or a cut stream once it started. */
  failed(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    const known = errorAnswer(err);
    if (known === null)
      this.logger.error({ err, method: req.method, url: redactUrl(req.url) }, 'unhandled error');
    if (res.headersSent || known === 'aborted') {
      res.destroy();
      return;
    }
    // A refusal that escaped its handler (the database going away mid-way) keeps its own answer.
    const { status, code, message, headers = {} } = known ?? INTERNAL_ERROR;
    this.sendJson(res, status, headers, errorBody(code, message));
  }
}
