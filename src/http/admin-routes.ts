import type { Router } from 'express';
import type { CatalogWriter } from '../domain/repositories';
import { sendError } from './errors';
import {
  acceptBodies,
  adminAlbumBody,
  adminIntIdParam,
  adminTrackBody,
  adminTrackIdParam,
  adminUserBody,
  parseBody,
} from './validation';
import { exactRouter } from './exact-routing';

/** Catalogue upserts for the main application (contract section 4). Mounted behind `requireAdmin`. */
export function adminRoutes(catalog: CatalogWriter, onUserChanged: (id: number) => void): Router {
  const router = exactRouter();
  router.use(acceptBodies('json'));

  router.put('/users/:userId', async (req, res) => {
    const id = adminIntIdParam(req, 'userId');
    const body = parseBody(req, adminUserBody);
    const { user, created } = await catalog.upsertUser(id, {
      username: body.username,
      isCreator: body.is_creator,
      isTeam: body.is_team,
    });
    onUserChanged(id);
    res.status(created ? 201 : 200).json({ user });
  });

  router.put('/albums/:albumId', async (req, res) => {
    const id = adminIntIdParam(req, 'albumId');
    const body = parseBody(req, adminAlbumBody);
    const { album, created } = await catalog.upsertAlbum(id, {
      title: body.title,
      createdById: body.created_by_id,
    });
    res.status(created ? 201 : 200).json({ album });
  });

  router.put('/tracks/:trackId', async (req, res) => {
    const id = adminTrackIdParam(req);
    const body = parseBody(req, adminTrackBody);
    const { track, created } = await catalog.upsertTrack(id, {
      title: body.title,
      albumId: body.album_id,
      durationS: body.duration_s,
    });
    res.status(created ? 201 : 200).json({ track });
  });

  // Stop here: falling through to the user routes would answer an admin call with "invalid token".
  router.use((req, res) =>
    sendError(res, 404, 'not_found', `no route for ${req.method} ${req.baseUrl}${req.path}`),
  );

  return router;
}
