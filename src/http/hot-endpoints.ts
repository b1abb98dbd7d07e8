import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import type { Session } from '../auth/authenticate';
import type { CommentService } from '../domain/comment-service';
import type { User } from '../domain/types';
import { trackStream, userStream, type EventData } from '../events/types';
import type { createCommentBody } from './validation';

/**
 * The two endpoints that carry the load, each written once: the express routes and the lean
 * dispatch (src/http/entry.ts) both match them by this table and answer them with the handlers
 * below. The lean dispatch only decides whether a request is the plain case.
 */
export const API_PREFIX = '/api';

/** Paths under `API_PREFIX`; `API_PREFIX + path` is also the request metric's route label. */
export const HOT_ROUTES = {
  createComment: { method: 'POST', path: '/tracks/:trackId/comments' },
  trackEvents: { method: 'GET', path: '/tracks/:trackId/events' },
  userEvents: { method: 'GET', path: '/me/events' },
} as const;

export type HotRoute = (typeof HOT_ROUTES)[keyof typeof HOT_ROUTES];

/** The request metric's label for a route, as the app's metric middleware computes it. */
export const routeLabel = (route: HotRoute): string => `${API_PREFIX}${route.path}`;

/**
 * Matches a path (no query string) against a route exactly, as the app's exact routing does:
 * the decoded parameters, or null when it is not this route or a parameter does not decode.
 */
export function routeMatcher(route: HotRoute): (pathname: string) => Record<string, string> | null {
  const names: string[] = [];
  const pattern = routeLabel(route)
    .split('/')
    .map((part) => {
      if (!part.startsWith(':')) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(part.slice(1));
      return '([^/?#]+)';
    })
    .join('/');
  const exact = new RegExp(`^${pattern}$`);
  return (pathname) => {
    const m = exact.exec(pathname);
    if (!m) return null;
    const params: Record<string, string> = {};
    try {
      names.forEach((name, i) => (params[name] = decodeURIComponent(m[i + 1]!)));
    } catch {
      return null;
    }
    return params;
  };
}

/** A JSON answer: status, the endpoint's own headers (on top of the app's), body. */
export interface JsonAnswer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** `POST /api/tracks/:trackId/comments` once the caller is known and the body is valid. */
export async function createComment(
  comments: Pick<CommentService, 'create'>,
  user: User,
  trackId: string,
  body: z.output<typeof createCommentBody>,
): Promise<JsonAnswer> {
  const comment = await comments.create(user, trackId, {
    content: body.content,
    timestamp: body.timestamp,
    parentId: body.parent_id,
  });
  return { status: 201, headers: { Location: `/api/comments/${comment.id}` }, body: { comment } };
}

/** What the HTTP layer needs from the stream hub. */
export interface StreamGateway {
  open(
    req: IncomingMessage,
    res: ServerResponse,
    target: {
      stream: string;
      kind: 'track' | 'user';
      trackId: string | null;
      userId: number;
      lastEventId: string | undefined;
      /** The token's `exp` (epoch ms): the stream is ended then. */
      expiresAt?: number;
      headers?: Readonly<Record<string, string | string[]>>;
    },
  ): Promise<void>;
  publishEphemeral(stream: string, data: EventData): Promise<void>;
}

/** `Last-Event-ID` header (what EventSource sends on reconnect), else `?last_event_id=`. */
export function lastEventIdOf(
  req: IncomingMessage,
  query: Record<string, unknown>,
): string | undefined {
  const header = req.headers['last-event-id'];
  if (typeof header === 'string') return header.trim();
  const q = query.last_event_id;
  return typeof q === 'string' ? q.trim() : undefined;
}

/**
 * `GET /api/tracks/:trackId/events` (`trackId` given) and `GET /api/me/events` (null).
 * `admit` holds the refusals that come before the stream opens; `open` hands the response to
 * the hub, with the app's response headers when the caller recorded them itself.
 */
export function streamEndpoint(deps: {
  comments: Pick<CommentService, 'requireTrack'>;
  hub: StreamGateway;
}) {
  return {
    async admit(trackId: string | null): Promise<void> {
      if (trackId !== null) await deps.comments.requireTrack(trackId);
    },
    open(
      req: IncomingMessage,
      res: ServerResponse,
      session: Session,
      trackId: string | null,
      query: Record<string, unknown>,
      headers?: Record<string, string | string[]>,
    ): Promise<void> {
      return deps.hub.open(req, res, {
        stream: trackId !== null ? trackStream(trackId) : userStream(session.user.id),
        kind: trackId !== null ? 'track' : 'user',
        trackId,
        userId: session.user.id,
        lastEventId: lastEventIdOf(req, query),
        expiresAt: session.expiresAt,
        headers,
      });
    },
  };
}
