import type { IncomingMessage, ServerResponse } from 'node:http';
import querystring from 'node:querystring';
import type { Session, UserAuthenticator } from '../auth/authenticate';
import type { CommentService } from '../domain/comment-service';
import { HOT_ROUTES, routeMatcher, streamEndpoint, type StreamGateway } from './hot-endpoints';
import type { FastPath, LeanHttp } from './lean-http';
import { requestIdOf } from './logging';
import { isTrackId } from './validation';

/**
 * SSE streams that open successfully skip express: whatever a request passes
 * through stays reachable from its req/res for the stream's whole life
 * (express's router state, pino-http's child logger and listeners), which
 * tripled the memory of an idle stream. This path takes only the plain case
 * (`GET` of exactly the route path, valid user, existing track) and answers
 * it with the endpoint's one handler (`streamEndpoint`), the app's response
 * headers and `X-Request-Id`. Anything else — other spellings of the path,
 * failed auth, unknown track — is handed to the express app untouched, so
 * error answers, their logs and metrics stay exactly the app's.
 */
export function streamOpenFastPath(
  lean: LeanHttp,
  deps: {
    userAuth: Pick<UserAuthenticator, 'session'>;
    comments: Pick<CommentService, 'requireTrack'>;
    hub: StreamGateway;
  },
): FastPath {
  const streams = streamEndpoint(deps);
  const matchTrack = routeMatcher(HOT_ROUTES.trackEvents);
  const matchUser = routeMatcher(HOT_ROUTES.userEvents);
  const serve = async (
    req: IncomingMessage,
    res: ServerResponse,
    trackId: string | null,
    query: string,
  ): Promise<void> => {
    let session: Session;
    try {
      session = await deps.userAuth.session(req.headers);
      await streams.admit(trackId);
    } catch {
      // The app answers refusals (401, 404, 503 …) with its own body, headers and log line.
      lean.toApp(req, res);
      return;
    }
    const id = requestIdOf(req);
    const headers = await lean.responseHeaders(req);
    headers['X-Request-Id'] = id;
    await streams.open(req, res, session, trackId, querystring.parse(query), headers);
    const status = res.statusCode;
    lean.logRequest(req, id, status, status === 200 ? 'stream opened' : 'stream refused');
  };

  return (req, res) => {
    // Both stream routes are GETs (HEAD, which express routes alike, goes to the app).
    if (req.method !== HOT_ROUTES.trackEvents.method) return false;
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const pathname = q === -1 ? url : url.slice(0, q);
    let trackId: string | null = null;
    if (matchUser(pathname) === null) {
      const params = matchTrack(pathname);
      if (!params || !isTrackId(params.trackId!)) return false;
      trackId = params.trackId!;
    }
    serve(req, res, trackId, q === -1 ? '' : url.slice(q + 1)).catch((err: unknown) =>
      lean.failed(req, res, err),
    );
    return true;
  };
}
