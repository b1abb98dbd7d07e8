import type { RequestListener } from 'node:http';
import type { Express } from 'express';
import type { Logger } from 'pino';
import type { HeaderStep } from '../app';
import type { UserAuthenticator } from '../auth/authenticate';
import type { CommentService } from '../domain/comment-service';
import type { Metrics } from '../metrics/metrics';
import { commentCreateFastPath } from './comment-fast-path';
import { LeanHttp } from './lean-http';
import { streamOpenFastPath } from './stream-fast-path';
import type { StreamGateway } from './stream-routes';

/**
 * The server's request listener: the two requests that carry the load — opening a stream and
 * posting a comment — take lean paths when they are the plain case; everything else, and
 * anything a lean path declines, goes to the express app.
 */
export function requestListener(
  app: Express,
  deps: {
    userAuth: Pick<UserAuthenticator, 'authenticate'>;
    comments: Pick<CommentService, 'requireTrack' | 'create'>;
    hub: StreamGateway;
    logger: Logger;
    metrics: Metrics;
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
