import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import querystring from 'node:querystring';
import type { Express, Request } from 'express';
import type { Logger } from 'pino';
import type { UserAuthenticator } from '../auth/authenticate';
import type { CommentService } from '../domain/comment-service';
import type { User } from '../domain/types';
import { trackStream, userStream } from '../events/types';
import type { HeaderStep } from '../app';
import { redactUrl, requestIdOf } from './logging';
import { lastEventIdOf, type StreamGateway } from './stream-routes';
import { isTrackId } from './validation';

const TRACK_EVENTS = /^\/api\/tracks\/([^/?]+)\/events$/;
const ME_EVENTS = '/api/me/events';

/**
 * SSE streams that open successfully skip express: whatever a request passes
 * through stays reachable from its req/res for the stream's whole life
 * (express's router state, pino-http's child logger and listeners), which
 * tripled the memory of an idle stream. This path takes only the plain case
 * (`GET` of exactly the route path, valid user, existing track) and answers
 * it as the express route would: same security/CORS headers, `X-Request-Id`,
 * `Last-Event-ID` handling and hub. Anything else — other spellings of the
 * path, failed auth, unknown track, unexpected errors before the response
 * starts — is handed to the express app untouched, so error answers, their
 * logs and metrics stay exactly the app's.
 */
export function withStreamFastPath(
  app: Express,
  deps: {
    userAuth: Pick<UserAuthenticator, 'authenticate'>;
    comments: Pick<CommentService, 'requireTrack'>;
    hub: StreamGateway;
    logger: Logger;
    /** The app's header middlewares (security headers, CORS). */
    headerSteps: HeaderStep[];
  },
): RequestListener {
  const toApp = (req: IncomingMessage, res: ServerResponse) => app(req, res);

  // The client address the app would log (`req.ip`, which honours `trust proxy`), from a
  // short-lived view on the app's request prototype: the request itself is left as it is.
  const clientIp = (req: IncomingMessage): string | undefined =>
    (
      Object.create(app.request, {
        headers: { value: req.headers },
        socket: { value: req.socket },
      }) as Request
    ).ip;

  // The header middlewares write to a recorder, not to `res`: the headers then reach the hub's
  // writeHead as one object, and an open stream keeps no per-response header map.
  const headersFor = (req: IncomingMessage) =>
    new Promise<Record<string, string | string[]>>((resolve, reject) => {
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
        const headers: Record<string, string | string[]> = {};
        for (const { name, value } of recorded.values()) headers[name] = value;
        resolve(headers);
      };
      let i = 0;
      const next = (err?: unknown) => {
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        const step = deps.headerSteps[i++];
        if (step) step(req, recorder as unknown as ServerResponse, next);
        else done();
      };
      next();
    });

  const serve = async (
    req: IncomingMessage,
    res: ServerResponse,
    trackId: string | null,
    query: string,
  ): Promise<void> => {
    let user: User;
    try {
      user = await deps.userAuth.authenticate(req.headers);
      if (trackId !== null) await deps.comments.requireTrack(trackId);
    } catch {
      // The app answers refusals (401, 404, 503 …) with its own body, headers and log line.
      toApp(req, res);
      return;
    }
    const id = requestIdOf(req);
    const headers = await headersFor(req);
    headers['X-Request-Id'] = id;
    await deps.hub.open(req, res, {
      stream: trackId !== null ? trackStream(trackId) : userStream(user.id),
      kind: trackId !== null ? 'track' : 'user',
      trackId,
      userId: user.id,
      lastEventId: lastEventIdOf(req, querystring.parse(query)),
      headers,
    });
    const status = res.statusCode;
    deps.logger[status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info'](
      {
        req: { id, method: req.method, url: redactUrl(req.url), ip: clientIp(req) },
        res: { statusCode: status },
      },
      status === 200 ? 'stream opened' : 'stream refused',
    );
  };

  return (req, res) => {
    const url = req.url ?? '';
    if (req.method !== 'GET' || !url.startsWith('/api/')) return toApp(req, res);
    const q = url.indexOf('?');
    const pathname = q === -1 ? url : url.slice(0, q);
    let trackId: string | null = null;
    if (pathname !== ME_EVENTS) {
      const m = TRACK_EVENTS.exec(pathname);
      if (!m) return toApp(req, res);
      try {
        trackId = decodeURIComponent(m[1]!);
      } catch {
        return toApp(req, res);
      }
      if (!isTrackId(trackId)) return toApp(req, res);
    }
    serve(req, res, trackId, q === -1 ? '' : url.slice(q + 1)).catch((err: unknown) => {
      deps.logger.error({ err, url: redactUrl(req.url) }, 'stream open failed');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const body = JSON.stringify({ error: { code: 'internal_error', message: 'internal error' } });
      res.writeHead(500, {
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Length': Buffer.byteLength(body),
      });
      res.end(body);
    });
  };
}
