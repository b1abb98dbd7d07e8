import type { RequestListener } from 'node:http';
import type { Express } from 'express';
import type { Logger } from 'pino';
import type { HeaderStep } from '../app';
import { commentCreateFastPath } from './comment-fast-path';
import { LeanHttp } from './lean-http';
import { streamOpenFastPath } from './stream-fast-path';

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
