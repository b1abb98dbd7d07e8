/**
 * Lock order across replicas (contract section 7): replies racing their parent's delete, sent
 * at once to 2 real replicas on one PostgreSQL, round after round. Never a 5xx (a deadlock
 * answered 500 before); a reply either lands and is deleted with its parent, with its own
 * `comment_deleted`, or is refused as `400 invalid_parent`; no reply outlives its parent.
 */
import { startLiveEnv, type LiveEnv } from './support/live-env';
import type { CommentJson } from './support/sse-client';

let env: LiveEnv;

beforeAll(async () => {
  env = await startLiveEnv();
});

afterAll(async () => {
  await env?.close();
});

const ROUNDS = 40;
const REPLIES_PER_ROUND = 4;

test('replies racing their parent’s delete on two replicas: no 5xx, no reply outlives its parent', async () => {
  const track = await env.newTrack();
  const statuses: string[] = [];
  const landed: number[] = [];
  const parents: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const parent = await env.postComment(env.a, 'alice', track, `parent ${round}`);
    parents.push(parent.id);
    const replica = (i: number) => ((round + i) % 2 === 0 ? env.a : env.b);
    const replies = Array.from({ length: REPLIES_PER_ROUND }, (_, i) =>
      env.api(replica(i), 'POST', `/api/tracks/${track}/comments`, {
        user: i % 2 === 0 ? 'bob' : 'carol',
        body: { content: `reply ${round}.${i} @dave`, parent_id: parent.id },
      }),
    );
    // The delete goes out in the middle of the replies, to the replica of neither neighbour.
    const del = env.api(replica(round), 'DELETE', `/api/comments/${parent.id}`, {
      user: 'alice',
    });
    const [delRes, ...replyRes] = await Promise.all([del, ...replies]);
    statuses.push(`delete ${delRes.status}`);
    expect(delRes.status).toBe(204);
    for (const res of replyRes) {
      statuses.push(`reply ${res.status}`);
      if (res.status === 201) {
        landed.push((res.json as { comment: CommentJson }).comment.id);
      } else {
        expect(res.status).toBe(400);
        expect((res.json as { error: { code: string } }).error.code).toBe('invalid_parent');
      }
    }
  }
  expect(statuses.filter((s) => / 5\d\d$/.test(s))).toEqual([]);

  // Nothing of the track is left: every parent is gone, and every reply with it.
  expect(await env.sql(`SELECT id FROM comments WHERE track_id = $1`, [track])).toEqual([]);
  expect(
    await env.sql(
      `SELECT c.id FROM comments c
        WHERE c.parent_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM comments p WHERE p.id = c.parent_id)`,
    ),
  ).toEqual([]);
  // Every comment that was created got exactly one comment_deleted, and nothing else did.
  const deleted = await env.sql<{ comment_id: number }>(
    `SELECT (data->>'comment_id')::int AS comment_id FROM stream_events
      WHERE stream = $1 AND type = 'comment_deleted' ORDER BY 1`,
    [`track:${track}`],
  );
  expect(deleted.map((r) => r.comment_id)).toEqual([...parents, ...landed].sort((x, y) => x - y));
});
