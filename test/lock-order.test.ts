/**
 * Lock order (contract section 7, "No input reaches a 5xx"): a reply racing its parent's
 * delete must not deadlock. Every write takes its locks in one order: comment rows (the
 * parent's key-share lock first), then the comment's stored events, then stream heads.
 * The race is made deterministic by a second connection that holds the track's stream
 * head until both requests are seen waiting for locks (pg_stat_activity).
 */
import { Client } from 'pg';
import request from 'supertest';
import { USERS, eventsOfStream, lockWaiters, startRestEnv, type RestEnv } from './support/rest-env';

let env: RestEnv;
/** Holds the stream head so both requests are in flight together. */
let holder: Client;

beforeAll(async () => {
  env = await startRestEnv();
  holder = new Client({ connectionString: env.db.url });
  holder.on('error', () => undefined);
  await holder.connect();
});

afterAll(async () => {
  try {
    await holder?.end();
  } finally {
    await env?.close();
  }
});

afterEach(async () => {
  await holder.query('ROLLBACK').catch(() => undefined);
});

/** Resolves once `n` backends of the test database wait for a lock. */
const waitForLockWaiters = (n: number) => lockWaiters(env.pg, n, 5000);

test('a reply whose insert has begun and its parent’s delete both complete: no deadlock, the reply goes with its parent', async () => {
  const track = await env.newTrack();
  const parent = await env.postComment('bob', track, { content: 'root' });

  // The reply's statement queues behind the held stream head; the delete starts meanwhile.
  await holder.query('BEGIN');
  await holder.query('SELECT 1 FROM stream_heads WHERE stream = $1 FOR UPDATE', [`track:${track}`]);
  const replying = request(env.app)
    .post(`/api/tracks/${track}/comments`)
    .set(env.as('dan'))
    .send({ content: 'racing reply', parent_id: parent.id })
    .then((r) => r);
  await waitForLockWaiters(1);
  const deleting = request(env.app)
    .delete(`/api/comments/${parent.id}`)
    .set(env.as('bob'))
    .then((r) => r);
  await waitForLockWaiters(2);
  await holder.query('COMMIT');

  const [reply, del] = await Promise.all([replying, deleting]);
  expect(reply.status).toBe(201);
  expect(del.status).toBe(204);
  const left = await env.pg.query('SELECT id FROM comments WHERE track_id = $1', [track]);
  expect(left.rows).toEqual([]);
  const deleted = (await eventsOfStream(env.pg, `track:${track}`))
    .filter((e) => e.type === 'comment_deleted')
    .map((e) => e.data.comment_id);
  expect(deleted.sort()).toEqual([parent.id, reply.body.comment.id].sort());
});

test('a reply that finds its parent locked by a delete waits for it, then is 400 invalid_parent', async () => {
  const track = await env.newTrack();
  const parent = await env.postComment('bob', track, { content: 'root' });

  // Same race, the other way round: the delete holds the parent before the reply starts.
  await holder.query('BEGIN');
  await holder.query('SELECT 1 FROM stream_heads WHERE stream = $1 FOR UPDATE', [`track:${track}`]);
  const deleting = request(env.app)
    .delete(`/api/comments/${parent.id}`)
    .set(env.as('bob'))
    .then((r) => r);
  await waitForLockWaiters(1);
  const replying = request(env.app)
    .post(`/api/tracks/${track}/comments`)
    .set(env.as('dan'))
    .send({ content: 'too late @bob', parent_id: parent.id })
    .then((r) => r);
  await waitForLockWaiters(2);
  await holder.query('COMMIT');

  const [reply, del] = await Promise.all([replying, deleting]);
  expect(del.status).toBe(204);
  expect(reply.status).toBe(400);
  expect(reply.body.error.code).toBe('invalid_parent');
  const left = await env.pg.query('SELECT id FROM comments WHERE track_id = $1', [track]);
  expect(left.rows).toEqual([]);
  // Nothing of the refused reply was written: no event for bob.
  const bob = await eventsOfStream(env.pg, `user:${USERS.bob.id}`);
  expect(
    bob.filter((e) => (e.data.comment as { content?: string })?.content === 'too late @bob'),
  ).toEqual([]);
});
