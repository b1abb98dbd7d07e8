import type { IncomingMessage, ServerResponse } from 'node:http';
import querystring from 'node:querystring';
import type { Session, UserAuthenticator } from '../auth/authenticate';
import type { CommentService } from '../domain/comment-service';
import { trackStream, userStream } from '../events/types';
import type { FastPath, LeanHttp } from './lean-http';
import { requestIdOf } from './logging';
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
 * path, failed auth, unknown track — is handed to the express app untouched,
 * so error answers, their logs and metrics stay exactly the app's.
 */
export function streamOpenFastPath(
  lean: LeanHttp,
  deps: {
    userAuth: Pick<UserAuthenticator, 'session'>;
    comments: Pick<CommentService, 'requireTrack'>;
    hub: StreamGateway;
  },
): FastPath {
  const serve = async (
    req: IncomingMessage,
    res: ServerResponse,
    trackId: string | null,
    query: string,
  ): Promise<void> => {
    let session: Session;
    try {
      session = await deps.userAuth.session(req.headers);
      if (trackId !== null) await deps.comments.requireTrack(trackId);
    } catch {
      // The app answers refusals (401, 404, 503 …) with its own body, headers and log line.
      lean.toApp(req, res);
      return;
    }
    const id = requestIdOf(req);
    const headers = await lean.responseHeaders(req);
    headers['X-Request-Id'] = id;
    const user = session.user;
    await deps.hub.open(req, res, {
      stream: trackId !== null ? trackStream(trackId) : userStream(user.id),
      kind: trackId !== null ? 'track' : 'user',
      trackId,
      userId: user.id,
      lastEventId: lastEventIdOf(req, querystring.parse(query)),
      expiresAt: session.expiresAt,
      headers,
    });
    const status = res.statusCode;
    lean.logRequest(req, id, status, status === 200 ? 'stream opened' : 'stream refused');
  };

  return (req, res) => {
    const url = req.url ?? '';
    if (req.method !== 'GET' || !url.startsWith('/api/')) return false;
    const q = url.indexOf('?');
    const pathname = q === -1 ? url : url.slice(0, q);
    let trackId: string | null = null;
    if (pathname !== ME_EVENTS) {
      const m = TRACK_EVENTS.exec(pathname);
      if (!m) return false;
      try {
        trackId = decodeURIComponent(m[1]!);
      } catch {
        return false;
      }
      if (!isTrackId(trackId)) return false;
    }
    serve(req, res, trackId, q === -1 ? '' : url.slice(q + 1)).catch((err: unknown) =>
      lean.failed(req, res, err),
    );
    return true;
  };
}
