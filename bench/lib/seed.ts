/**
 * The bench's data and warm-up, over the public API: users, one album and the tracks
 * (admin API), then a few POSTs and a stream per replica so lazy loading and the JIT's
 * first compilations happen before anything is measured.
 */
import { TEST_ADMIN_TOKEN, userToken, type Replica } from '../../harness/replica';
import { SubscriberPool, type Target } from './subscriber-pool';

async function adminPut(base: string, pathname: string, body: unknown): Promise<void> {
  const res = await fetch(`${base}${pathname}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 200 && res.status !== 201) {
    throw new Error(`PUT ${pathname}: ${res.status} ${(await res.text()).slice(0, 300)}`);
  }
  await res.arrayBuffer();
}

/** Runs `fn` over `items`, at most `lanes` at a time. */
async function inParallel<T>(
  items: T[],
  lanes: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(lanes, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/**
 * Creates `albums` albums, album `a` (1-based) created by user `a` (a creator who does not
 * comment), the commenting users (`userIds`, from 1000), and the tracks, track `t` in album
 * `t % albums + 1`. Returns a token per commenter.
 */
export async function seedCatalog(
  adminBase: string,
  userIds: number[],
  trackIds: string[],
  albums: number,
): Promise<string[]> {
  await inParallel(
    Array.from({ length: albums }, (_, i) => i + 1),
    16,
    async (a) => {
      await adminPut(adminBase, `/api/admin/users/${a}`, {
        username: `bench_creator${a}`,
        is_creator: true,
        is_team: false,
      });
      await adminPut(adminBase, `/api/admin/albums/${a}`, {
        title: `Bench album ${a}`,
        created_by_id: a,
      });
    },
  );
  await inParallel(userIds, 16, (id) =>
    adminPut(adminBase, `/api/admin/users/${id}`, {
      username: `bench_u${id}`,
      is_creator: false,
      is_team: false,
    }),
  );
  await inParallel(
    trackIds.map((id, t) => ({ id, album: (t % albums) + 1 })),
    16,
    ({ id, album }) =>
      adminPut(adminBase, `/api/admin/tracks/${id}`, {
        title: `Track ${id}`,
        album_id: album,
        duration_s: 600,
      }),
  );
  return Promise.all(userIds.map((id) => userToken(id, 3600)));
}

/** `posts` comments to `trackId` on each replica while one stream per replica listens. */
export async function warmUp(
  replicas: Replica[],
  targets: Target[],
  tokens: string[],
  trackId: string,
  posts: number,
): Promise<void> {
  if (posts === 0) return;
  const warm = new SubscriberPool({
    runTag: 'warmup',
    trackIds: [trackId],
    targets,
    tokens,
    subscribers: targets.map((_, i) => [i, 0, i, 0] as [number, number, number, number]),
    connectConcurrency: targets.length,
    reconnectDelayMs: 1000,
  });
  await warm.openAll();
  try {
    for (const r of replicas) {
      await inParallel(
        Array.from({ length: posts }, (_, i) => i),
        4,
        async (i) => {
          const res = await fetch(`${r.url}/api/tracks/${trackId}/comments`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${tokens[i % tokens.length]}`,
              'content-type': 'application/json',
            },
            body: JSON.stringify({ content: `warm-up ${i}`, timestamp: 1 }),
          });
          await res.arrayBuffer();
          if (res.status !== 201) throw new Error(`warm-up POST: ${res.status}`);
        },
      );
    }
  } finally {
    warm.close();
  }
}
