import type { Router } from 'express';
import type { CommentService } from '../domain/comment-service';
import { currentUser } from './auth-middleware';
import {
  acceptBodies,
  createCommentBody,
  createCommentFormTypes,
  decodeCursor,
  editCommentBody,
  encodeCursor,
  intIdParam,
  listQuery,
  parseBody,
  parseQuery,
  trackIdParam,
} from './validation';
import { exactRouter } from './exact-routing';
import { createComment, HOT_ROUTES } from './hot-endpoints';

/** Comment REST endpoints (contract section 4). Mounted behind `requireUser`. */
export function commentRoutes(comments: CommentService): Router {
  const router = exactRouter();

  router.get('/tracks/:trackId/comments', async (req, res) => {
    const trackId = trackIdParam(req);
    const q = parseQuery(req, listQuery);
    const page = await comments.list(trackId, {
      order: q.order,
      limit: q.limit,
      cursor: decodeCursor(q.cursor),
    });
    res.json({ comments: page.comments, next_cursor: page.next ? encodeCursor(page.next) : null });
  });

  router.post(HOT_ROUTES.createComment.path, acceptBodies('json', 'form'), async (req, res) => {
    const trackId = trackIdParam(req);
    const body = parseBody(req, createCommentBody, createCommentFormTypes);
    const answer = await createComment(comments, currentUser(res), trackId, body);
    res.status(answer.status).set(answer.headers).json(answer.body);
  });

  router.patch('/comments/:commentId', acceptBodies('json', 'form'), async (req, res) => {
    const id = intIdParam(req, 'commentId', 'comment');
    const body = parseBody(req, editCommentBody);
    const comment = await comments.edit(currentUser(res), id, body.content);
    res.json({ comment });
  });

  router.delete('/comments/:commentId', async (req, res) => {
    const id = intIdParam(req, 'commentId', 'comment');
    await comments.delete(currentUser(res), id);
    res.status(204).end();
  });

  return router;
}
