/**
 * Comment changes racing each other. Each race is made deterministic by a
 * second database connection that holds a transaction open until the API
 * request is seen waiting for its lock (pg_stat_activity), then commits.
 * What must hold: every committed change has its events (a reply removed
 * with its parent gets `comment_deleted`), and losing a race is a 4xx with
 * the error shape, never a 500.
 */
import { Client } from 'pg';
import request from 'supertest';
import {
  USERS,
  eventsForComment,
  eventsOfStream,
  expectError,
  startRestEnv,
  type RestEnv,
  lockWaiters,
} from './support/rest-env';

let env: RestEnv;
/** The competing transaction's connection. */
let other: Client;

beforeAll(async () => {
  env = await startRestEnv();
  other = new Client({ connectionString: env.db.url });
  other.on('error', () => undefined);
  await other.connect();
});

afterAll(async () => {
  try {
    await other?.end();
  } finally {
    await env?.close();
  }
});

afterEach(async () => {
  // A failed test must not leave the competing transaction open.
  await other.query('ROLLBACK').catch(() => undefined);
});

/** Resolves once `n` backends of the test database wait for a lock. */
const waitForLockWaiters = (n: number) => lockWaiters(env.pg, n, 3000);

test('a reply committed while its parent is being deleted is deleted with it, with its comment_deleted', async () => {
  const track = await env.newTrack();
  const parent = await env.postComment('bob', track, { content: 'root' });

  await other.query('BEGIN');
  const { rows } = await other.query<{ id: number }>(
    `INSERT INTO comments (track_id, user_id, content, timestamp, parent_id)
     VALUES ($1, $2, 'late reply', 0, $3) RETURNING id`,
    [track, USERS.dan.id, parent.id],
  );
  const replyId = rows[0]!.id;
  const deleting = request(env.app)
    .delete(`/api/comments/${parent.id}`)
    .set(env.as('bob'))
    .then((r) => r);
  await waitForLockWaiters(1);
  await other.query('COMMIT');

  expect((await deleting).status).toBe(204);
  const left = await env.pg.query('SELECT id FROM comments WHERE track_id = $1', [track]);
  expect(left.rows).toEqual([]);
  const deleted = (await eventsOfStream(env.pg, `track:${track}`))
    .filter((e) => e.type === 'comment_deleted')
    .map((e) => e.data.comment_id);
  expect(deleted.sort()).toEqual([parent.id, replyId].sort());
});

test('a reply to a parent deleted meanwhile → 400 invalid_parent, nothing written', async () => {
  const track = await env.newTrack();
  const parent = await env.postComment('bob', track, { content: 'vanishing' });

  await other.query('BEGIN');
  await other.query('DELETE FROM comments WHERE id = $1', [parent.id]);
  const creating = request(env.app)
    .post(`/api/tracks/${track}/comments`)
    .set(env.as('dan'))
    .send({ content: 'reply to a vanishing parent @erin_5', parent_id: parent.id })
    .then((r) => r);
  await waitForLockWaiters(1);
  await other.query('COMMIT');

  expectError(await creating, 400, 'invalid_parent');
  const left = await env.pg.query('SELECT id FROM comments WHERE track_id = $1', [track]);
  expect(left.rows).toEqual([]);
  expect((await eventsOfStream(env.pg, `track:${track}`)).map((e) => e.type)).toEqual([
    'new_comment',
  ]);
});

test('an edit of a comment deleted meanwhile → 404, nothing written', async () => {
  const track = await env.newTrack();
  const c = await env.postComment('dan', track, { content: 'hi @bob' });
  const eventsBefore = (await eventsForComment(env.pg, c.id)).length;

  await other.query('BEGIN');
  await other.query('DELETE FROM comments WHERE id = $1', [c.id]);
  const editing = request(env.app)
    .patch(`/api/comments/${c.id}`)
    .set(env.as('dan'))
    .send({ content: 'hi @bob and @erin_5' })
    .then((r) => r);
  await waitForLockWaiters(1);
  await other.query('COMMIT');

  expectError(await editing, 404, 'not_found');
  expect(await eventsForComment(env.pg, c.id)).toHaveLength(eventsBefore);
});

test('two edits at once that name the same new user: both succeed, one mention, one event', async () => {
  const track = await env.newTrack();
  const c = await env.postComment('dan', track, { content: 'hi @tess' });

  // Hold the mention row both edits must remove, so both are in flight together.
  await other.query('BEGIN');
  await other.query('SELECT 1 FROM comment_mentions WHERE comment_id = $1 FOR UPDATE', [c.id]);
  const edit = (content: string) =>
    request(env.app)
      .patch(`/api/comments/${c.id}`)
      .set(env.as('dan'))
      .send({ content })
      .then((r) => r);
  const first = edit('hi @erin_5');
  const second = edit('hello @erin_5');
  await waitForLockWaiters(2);
  await other.query('COMMIT');

  const results = await Promise.all([first, second]);
  expect(results.map((r) => r.status)).toEqual([200, 200]);
  const { rows } = await env.pg.query(
    'SELECT user_id FROM comment_mentions WHERE comment_id = $1',
    [c.id],
  );
  expect(rows).toEqual([{ user_id: USERS.erin.id }]);
  const erinEvents = (await eventsForComment(env.pg, c.id)).filter(
    (e) => e.stream === `user:${USERS.erin.id}`,
  );
  expect(erinEvents).toHaveLength(1);
  const edits = (await eventsForComment(env.pg, c.id)).filter((e) => e.type === 'comment_edited');
  expect(edits).toHaveLength(2);
});
