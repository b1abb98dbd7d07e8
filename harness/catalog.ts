import { jsonRequest } from './http';
import { TEST_ADMIN_TOKEN, userToken } from './replica';

/** A user as the admin API takes it (contract section 4), with the id it is put under. */
export interface CatalogUser {
  id: number;
  username: string;
  is_creator: boolean;
  is_team: boolean;
}

/**
 * The users of the multi-replica test envs (cluster, live). Ids are fixed so
 * tests can name them; `creator` owns the album, so every comment also emits a
 * `mention` to them.
 */
export const REPLICA_TEST_USERS = {
  creator: { id: 1, username: 'cleo', is_creator: true, is_team: false },
  alice: { id: 2, username: 'alice', is_creator: false, is_team: false },
  bob: { id: 3, username: 'bob', is_creator: false, is_team: false },
  carol: { id: 4, username: 'carol', is_creator: false, is_team: false },
  dave: { id: 5, username: 'dave', is_creator: false, is_team: false },
  erin: { id: 6, username: 'erin', is_creator: false, is_team: false },
} as const;

export interface CatalogAlbum {
  id: number;
  title: string;
  created_by_id: number;
}

export interface CatalogTrack {
  id: string;
  /** Default: `Track <id>`. */
  title?: string;
  /** Omitted from the request when absent or null. */
  duration_s?: number | null;
}

/** One admin PUT of `body` at `path`; throws unless the answer is a success. */
export type AdminPut = (path: string, body: Record<string, unknown>) => Promise<void>;

/** An `AdminPut` against the server at `base()` (asked per call: replicas come and go). */
export function adminPutOver(base: () => string): AdminPut {
  return async (path, body) => {
    const res = await jsonRequest(`${base()}${path}`, 'PUT', { token: TEST_ADMIN_TOKEN, body });
    if (res.status !== 200 && res.status !== 201) {
      throw new Error(`PUT ${path}: expected 200/201, got ${res.status} ${res.text}`);
    }
  };
}

/** Puts track `track` on album `albumId`; resolves with its id. */
export async function putTrack(
  put: AdminPut,
  albumId: number,
  track: CatalogTrack,
): Promise<string> {
  const body: Record<string, unknown> = {
    title: track.title ?? `Track ${track.id}`,
    album_id: albumId,
  };
  if (track.duration_s !== undefined && track.duration_s !== null) {
    body.duration_s = track.duration_s;
  }
  await put(`/api/admin/tracks/${track.id}`, body);
  return track.id;
}

/** Seeds users, then the album, then its tracks, one request at a time. */
export async function seedCatalog(
  put: AdminPut,
  catalog: {
    users: Record<string, CatalogUser>;
    album: CatalogAlbum;
    tracks?: readonly CatalogTrack[];
  },
): Promise<void> {
  for (const u of Object.values(catalog.users)) {
    await put(`/api/admin/users/${u.id}`, {
      username: u.username,
      is_creator: u.is_creator,
      is_team: u.is_team,
    });
  }
  const { id, ...album } = catalog.album;
  await put(`/api/admin/albums/${id}`, album);
  for (const t of catalog.tracks ?? []) await putTrack(put, id, t);
}

/** A user JWT (HS256, 1 h) per key of `users`. */
export async function userTokens<K extends string>(
  users: Record<K, { id: number }>,
): Promise<Record<K, string>> {
  const tokens = {} as Record<K, string>;
  for (const key of Object.keys(users) as K[]) tokens[key] = await userToken(users[key].id);
  return tokens;
}
