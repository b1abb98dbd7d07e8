import type { RequestListener } from 'node:http';
import type { Express } from 'express';
import type { Logger } from 'pino';
import type { HeaderStep } from './response-headers';
import { commentCreateFastPath } from './comment-fast-path';
import { LeanHttp } from './lean-http';
import { streamOpenFastPath } from './stream-fast-path';

/**
 * What the lean paths do in place of each middleware the app runs before a hot endpoint's
 * handler (buildApp's global ones, `requireUser`, the route's own), by the middleware's name.
 * test/lean-parity.test.ts reads the app's actual stack: a middleware added there fails it
 * until it is listed here, with its lean counterpart (or a reason the lean paths decline).
 */
export const LEAN_COUNTERPARTS = {
  accessLog: 'LeanHttp.logRequest: the same line shape and level (logging.ts)',
  helmetMiddleware: 'LeanHttp.responseHeaders runs the same header steps',
  corsMiddleware: 'LeanHttp.responseHeaders runs the same header steps',
  requestMetric: 'the same histogram, labelled routeLabel(route) as express labels it',
  crossOriginProtection: 'refusesCrossOrigin: a refused write is declined to the app',
  jsonParser: 'LeanHttp.readJsonBody runs the same parser (jsonBodyParser)',
  urlencodedParser: 'forms are declined to the app',
  requireUser: 'the same authenticator; a refusal is declined to the app',
  acceptBodies: 'only plain JSON bodies are taken; other types are declined to the app',
} as const;

/**
 * The server's request listener: the two requests that carry the load — opening a stream and
 * posting a comment — take lean paths when they are the plain case; everything else, and
 * anything a lean path declines, goes to the express app.
 */
export function requestListener(
  app: Express,
  deps: Parameters<typeof streamOpenFastPath>[1] &
    Parameters<typeof commentCreateFastPath>[1] & {
      logger: Logger;
      /** The app's header middlewares (security headers, CORS). */
      headerSteps: HeaderStep[];
    },
): RequestListener {
  const lean = new LeanHttp(app, deps.headerSteps, deps.logger);
  const fastPaths = [streamOpenFastPath(lean, deps), commentCreateFastPath(lean, deps)];
  return (req, res) => {
    for (const take of fastPaths) if (take(req, res)) return;
    app(req, res);
  };
}
