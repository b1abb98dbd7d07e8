import type { CatalogStore } from './catalog-store';
import type { Db } from './prisma';

export const DEMO_USERS = [
  { id: 1, username: 'alice', isCreator: true, isTeam: false },
  { id: 2, username: 'bob', isCreator: false, isTeam: false },
  { id: 3, username: 'carol', isCreator: false, isTeam: true },
  { id: 4, username: 'dave', isCreator: false, isTeam: false },
] as const;

export const DEMO_TRACKS = [
  { id: 'night-drive-01', title: 'Headlights', durationS: 215 },
  { id: 'night-drive-02', title: 'Overpass', durationS: 187 },
  { id: 'night-drive-03', title: 'Last Exit', durationS: 242 },
] as const;

/** Seeds demo users, an album by alice and its tracks, once (only into an empty catalogue). */
export async function seedDemoData(db: Db, catalog: CatalogStore): Promise<boolean> {
  if ((await db.user.count()) > 0) return false;
  for (const u of DEMO_USERS) {
    await catalog.upsertUser(u.id, {
      username: u.username,
      isCreator: u.isCreator,
      isTeam: u.isTeam,
    });
  }
  await catalog.upsertAlbum(1, { title: 'Night Drive', createdById: 1 });
  for (const t of DEMO_TRACKS) {
    await catalog.upsertTrack(t.id, { title: t.title, albumId: 1, durationS: t.durationS });
  }
  return true;
}
