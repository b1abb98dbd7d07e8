import type { IncomingMessage, ServerResponse } from 'node:http';
import type { UserAuthenticator } from '../auth/authenticate';
import type { CommentService } from '../domain/comment-service';
import type { User } from '../domain/types';
import type { Metrics } from '../metrics/metrics';
import { refusesCrossOrigin, trustedOriginSet } from './cross-origin';
import { errorAnswer, errorBody, INTERNAL_ERROR } from './errors';
import { createComment, HOT_ROUTES, routeLabel, routeMatcher } from './hot-endpoints';
import type { FastPath, LeanHttp } from './lean-http';
import { requestIdOf } from './logging';
import { BODY_LIMIT_BYTES, createCommentBody, isTrackId, validateBody } from './validation';

const ROUTE = HOT_ROUTES.createComment;
const LABEL = routeLabel(ROUTE);
/** `application/json`, bare or with the UTF-8 charset: what the app's JSON parser reads as UTF-8. */
const PLAIN_JSON = /^application\/json\s*(?:;\s*charset="?utf-8"?\s*)?$/i;

/** A plain JSON body of a declared length within the limit; anything else goes to the app. */
function hasPlainJsonBody(req: IncomingMessage): boolean {
  const h = req.headers;
  if (h['transfer-encoding'] !== undefined) return false;
  if (h['content-encoding'] !== undefined && h['content-encoding'] !== 'identity') return false;
  const length = Number(h['content-length']);
  if (!(length >= 1 && length <= BODY_LIMIT_BYTES)) return false;
  return PLAIN_JSON.test(h['content-type'] ?? '');
}

/**
 * `POST /api/tracks/:trackId/comments` with a JSON body, the write every listener's comment
 * takes, without express: under load the framework's per-request work (router, pino-http's
 * per-request logger, header middlewares) cost as much CPU as the comment's own work. It
 * takes only the plain case — exact path with no query, not a cross-site write, a JSON body
 * of a known length, valid user, existing track — and hands anything else to the app before
 * reading the body. From the body on it answers with the endpoint's one handler
 * (`createComment`), the app's JSON parser, validation, error bodies, headers, access-log line
 * and request metric.
 */
export function commentCreateFastPath(
  lean: LeanHttp,
  deps: {
    userAuth: Pick<UserAuthenticator, 'authenticate'>;
    comments: Pick<CommentService, 'requireTrack' | 'create'>;
    metrics: Metrics;
    /** `CORS_ORIGINS`: the origins the app's cross-origin rule trusts. */
    trustedOrigins: readonly string[];
  },
): FastPath {
  const trusted = trustedOriginSet(deps.trustedOrigins);
  const match = routeMatcher(ROUTE);
  const serve = async (req: IncomingMessage, res: ServerResponse, trackId: string) => {
    const endTimer = deps.metrics.httpDuration.startTimer();
    let user: User;
    try {
      user = await deps.userAuth.authenticate(req.headers);
      await deps.comments.requireTrack(trackId);
    } catch {
      // Refusals (401, 404, 503 …) are the app's, with its body, headers and log line.
      lean.toApp(req, res);
      return;
    }
    const id = requestIdOf(req);
    let status: number;
    let payload: unknown;
    const headers = { 'X-Request-Id': id } as Record<string, string>;
    try {
      const body = validateBody(await lean.readJsonBody(req, res), createCommentBody);
      const answer = await createComment(deps.comments, user, trackId, body);
      status = answer.status;
      payload = answer.body;
      Object.assign(headers, answer.headers);
    } catch (err) {
      const answer = errorAnswer(err);
      if (answer === 'aborted') return;
      if (answer === null)
        lean.logger.error({ err, method: req.method, route: ROUTE.path }, 'unhandled error');
      const { status: s, code, message, headers: extra } = answer ?? INTERNAL_ERROR;
      status = s;
      payload = errorBody(code, message);
      Object.assign(headers, extra);
    }
    lean.sendJson(res, status, { ...(await lean.responseHeaders(req)), ...headers }, payload);
    const seconds = endTimer({ method: ROUTE.method, route: LABEL, status: String(status) });
    lean.logRequest(req, id, status, 'request completed', {
      responseTime: Math.round(seconds * 1000),
    });
  };

  return (req, res) => {
    if (req.method !== ROUTE.method) return false;
    const params = match(req.url ?? '');
    // A refused cross-site write is the app's to answer (403), with the same rule code.
    if (!params || refusesCrossOrigin(req, trusted) || !hasPlainJsonBody(req)) return false;
    const trackId = params.trackId!;
    if (!isTrackId(trackId)) return false;
    serve(req, res, trackId).catch((err: unknown) => lean.failed(req, res, err));
    return true;
  };
}
