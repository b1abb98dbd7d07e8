import type { IncomingMessage, ServerResponse } from 'node:http';
import type { UserAuthenticator } from '../auth/authenticate';
import type { CommentService } from '../domain/comment-service';
import type { User } from '../domain/types';
import type { Metrics } from '../metrics/metrics';
import { refusesCrossOrigin, trustedOriginSet } from './cross-origin';
import { errorAnswer, INTERNAL_ERROR, invalidJson } from './errors';
import type { FastPath, LeanHttp } from './lean-http';
import { requestIdOf } from './logging';
import { BODY_LIMIT_BYTES, createCommentBody, isTrackId, validateBody } from './validation';

const TRACK_COMMENTS = /^\/api\/tracks\/([^/?]+)\/comments$/;
/** The route label the app's request metric uses for this endpoint. */
const ROUTE = '/api/tracks/:trackId/comments';
/** `application/json`, bare or with the UTF-8 charset: what the app's JSON parser reads as UTF-8. */
const PLAIN_JSON = /^application\/json\s*(?:;\s*charset="?utf-8"?\s*)?$/i;
/** JSON whitespace before the first value (the app's parser takes only an object or array). */
const FIRST_CHAR = /^[ \t\n\r]*(.)/s;

/** A plain JSON body of a declared length within the limit; anything else goes to the app. */
function hasPlainJsonBody(req: IncomingMessage): boolean {
  const h = req.headers;
  if (h['transfer-encoding'] !== undefined) return false;
  if (h['content-encoding'] !== undefined && h['content-encoding'] !== 'identity') return false;
  const length = Number(h['content-length']);
  if (!(length >= 1 && length <= BODY_LIMIT_BYTES)) return false;
  return PLAIN_JSON.test(h['content-type'] ?? '');
}

/** The whole body as text, or null when the client went away before sending it. */
function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', () => resolve(null));
    req.once('close', () => {
      if (!req.complete) resolve(null);
    });
  });
}

/** Parses as the app's JSON body parser does (strict: an object or array; a BOM is dropped). */
function parseJsonBody(text: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const first = FIRST_CHAR.exec(body)?.[1];
  if (first !== '{' && first !== '[') throw invalidJson();
  try {
    return JSON.parse(body);
  } catch {
    throw invalidJson();
  }
}

/**
 * `POST /api/tracks/:trackId/comments` with a JSON body, the write every listener's comment
 * takes, without express: under load the framework's per-request work (router, body parsers,
 * pino-http's per-request logger, header middlewares) cost as much CPU as the comment's own
 * work. Like the stream path it takes only the plain case — exact path, not a cross-site write,
 * JSON body of a known length, valid user, existing track — and hands anything else to the
 * app before reading the body, so the app answers it exactly as before. From the body on it
 * answers itself, with the app's validation, error bodies, headers, access-log line and
 * request metric.
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
      const text = await readBody(req);
      if (text === null) return;
      const body = validateBody(parseJsonBody(text), createCommentBody);
      const comment = await deps.comments.create(user, trackId, {
        content: body.content,
        timestamp: body.timestamp,
        parentId: body.parent_id,
      });
      status = 201;
      payload = { comment };
      headers.Location = `/api/comments/${comment.id}`;
    } catch (err) {
      const answer = errorAnswer(err);
      if (answer === 'aborted') return;
      if (answer === null)
        lean.logger.error({ err, method: req.method, route: ROUTE }, 'unhandled error');
      const { status: s, code, message, headers: extra } = answer ?? INTERNAL_ERROR;
      status = s;
      payload = { error: { code, message } };
      Object.assign(headers, extra);
    }
    lean.sendJson(res, status, { ...(await lean.responseHeaders(req)), ...headers }, payload);
    const seconds = endTimer({ method: 'POST', route: ROUTE, status: String(status) });
    lean.logRequest(req, id, status, 'request completed', {
      responseTime: Math.round(seconds * 1000),
    });
  };

  return (req, res) => {
    const url = req.url ?? '';
    if (req.method !== 'POST' || !url.startsWith('/api/tracks/')) return false;
    const m = TRACK_COMMENTS.exec(url);
    // A refused cross-site write is the app's to answer (403), with the same rule code.
    if (!m || refusesCrossOrigin(req, trusted) || !hasPlainJsonBody(req)) return false;
    let trackId: string;
    try {
      trackId = decodeURIComponent(m[1]!);
    } catch {
      return false;
    }
    if (!isTrackId(trackId)) return false;
    serve(req, res, trackId).catch((err: unknown) => lean.failed(req, res, err));
    return true;
  };
}
