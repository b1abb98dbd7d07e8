import type { RequestHandler, Router } from 'express';
import type { CommentService } from '../domain/comment-service';
import { currentSession, currentUser } from './auth-middleware';
import { HOT_ROUTES, streamEndpoint, type StreamGateway } from './hot-endpoints';
import { acceptBodies, parseBody, trackIdParam, typingBody } from './validation';
import { HttpError } from './errors';
import { exactRouter } from './exact-routing';

/** The SSE endpoints and typing (contract sections 4 and 5). Mounted behind `requireUser`. */
export function streamRoutes(deps: {
  comments: CommentService;
  hub: StreamGateway;
  typingLimit: RequestHandler;
  typingExpiresMs: number;
}): Router {
  const router = exactRouter();

  const streams = streamEndpoint(deps);
  router.get(HOT_ROUTES.trackEvents.path, async (req, res) => {
    const trackId = trackIdParam(req);
    await streams.admit(trackId);
    res.locals.sse = true;
    await streams.open(req, res, currentSession(res), trackId, req.query);
  });

  router.get(HOT_ROUTES.userEvents.path, async (req, res) => {
    res.locals.sse = true;
    await streams.open(req, res, currentSession(res), null, req.query);
  });

  router.post(
    '/tracks/:trackId/typing',
    acceptBodies('json', 'form'),
    deps.typingLimit,
    async (req, res) => {
      const trackId = trackIdParam(req);
      const body = parseBody(req, typingBody, { is_typing: 'boolean' });
      const typing = await deps.comments.typing(
        currentUser(res),
        trackId,
        body.is_typing,
        deps.typingExpiresMs,
      );
      try {
        await deps.hub.publishEphemeral(typing.stream, typing.data);
      } catch {
        throw new HttpError(503, 'bus_unavailable', 'live updates are unavailable; try again');
      }
      res.status(202).json({ accepted: true });
    },
  );

  return router;
}
