import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler, Router } from 'express';
import type { CommentService } from '../domain/comment-service';
import { trackStream, userStream, type EventData } from '../events/types';
import { currentUser, tokenExpiresAt } from './auth-middleware';
import { acceptBodies, parseBody, trackIdParam, typingBody } from './validation';
import { HttpError } from './errors';
import { exactRouter } from './exact-routing';

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

/** The SSE endpoints and typing (contract sections 4 and 5). Mounted behind `requireUser`. */
export function streamRoutes(deps: {
  comments: CommentService;
  hub: StreamGateway;
  typingLimit: RequestHandler;
  typingExpiresMs: number;
}): Router {
  const router = exactRouter();

  router.get('/tracks/:trackId/events', async (req, res) => {
    const trackId = trackIdParam(req);
    await deps.comments.requireTrack(trackId);
    res.locals.sse = true;
    await deps.hub.open(req, res, {
      stream: trackStream(trackId),
      kind: 'track',
      trackId,
      userId: currentUser(res).id,
      lastEventId: lastEventIdOf(req, req.query as Record<string, unknown>),
      expiresAt: tokenExpiresAt(res),
    });
  });

  router.get('/me/events', async (req, res) => {
    const user = currentUser(res);
    res.locals.sse = true;
    await deps.hub.open(req, res, {
      stream: userStream(user.id),
      kind: 'user',
      trackId: null,
      userId: user.id,
      lastEventId: lastEventIdOf(req, req.query as Record<string, unknown>),
      expiresAt: tokenExpiresAt(res),
    });
  });

  router.post(
    '/tracks/:trackId/typing',
    acceptBodies('json', 'form'),
    deps.typingLimit,
    async (req, res) => {
      const trackId = trackIdParam(req);
      const body = parseBody(req, typingBody, { is_typing: 'boolean' });
      await deps.comments.requireTrack(trackId);
      const user = currentUser(res);
      try {
        await deps.hub.publishEphemeral(trackStream(trackId), {
          type: 'user_typing',
          track_id: trackId,
          user_id: user.id,
          username: user.username,
          is_typing: body.is_typing,
          expires_in_ms: deps.typingExpiresMs,
        });
      } catch {
        throw new HttpError(503, 'bus_unavailable', 'live updates are unavailable; try again');
      }
      res.status(202).json({ accepted: true });
    },
  );

  return router;
}
