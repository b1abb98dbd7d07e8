/**
 * Bounded fan-out per request (contract section 7): a comment that names more than 20
 * distinct existing users is `400 too_many_mentions` and writes nothing, on create (lean
 * JSON path and express form path) and on edit. A `mention` event carries the comment with
 * only its recipient among the named, so its size does not grow with the number named.
 */
import request from 'supertest';
import {
  USERS,
  adminAuth,
  eventsForComment,
  expectError,
  rowCounts,
  useRestEnv,
} from './support/rest-env';

const env = useRestEnv();

/** 25 extra users, `fan1` … `fan25`, ids 101 … 125. */
const FANS = Array.from({ length: 25 }, (_, i) => ({ id: 101 + i, username: `fan${i + 1}` }));
const naming = (n: number) =>
  FANS.slice(0, n)
    .map((u) => `@${u.username}`)
    .join(' ');

beforeAll(async () => {
  for (const u of FANS) {
    const res = await request(env().app)
      .put(`/api/admin/users/${u.id}`)
      .set(adminAuth)
      .send({ username: u.username, is_creator: false, is_team: false });
    expect(res.status).toBe(201);
  }
});

describe('more than 20 distinct existing users named', () => {
  test.each([
    ['JSON (lean path)', 'json'],
    ['form (express)', 'form'],
  ] as const)('create, %s: 400 too_many_mentions, nothing written', async (_, type) => {
    const track = await env().newTrack();
    const before = await rowCounts(env().pg);
    const res = await request(env().app)
      .post(`/api/tracks/${track}/comments`)
      .set(env().as('dan'))
      .type(type)
      .send({ content: `hello ${naming(21)}` });
    expectError(res, 400, 'too_many_mentions');
    expect(await rowCounts(env().pg)).toEqual(before);
  });

  test('exactly 20 is fine; repeats, unknown names and e-mail addresses do not count', async () => {
    const track = await env().newTrack();
    const content = `${naming(20)} @fan1 @fan2 @nobody1 @nobody2 x@fan21.example`;
    const res = await request(env().app)
      .post(`/api/tracks/${track}/comments`)
      .set(env().as('dan'))
      .send({ content });
    expect(res.status).toBe(201);
    expect(res.body.comment.mentions).toHaveLength(20);
  });

  test('naming yourself counts: you plus 20 others is too many', async () => {
    const track = await env().newTrack();
    const res = await request(env().app)
      .post(`/api/tracks/${track}/comments`)
      .set(env().as('dan'))
      .send({ content: `@${USERS.dan.username} ${naming(20)}` });
    expectError(res, 400, 'too_many_mentions');
  });

  test('edit: 400 too_many_mentions, the comment, its mentions and events unchanged', async () => {
    const track = await env().newTrack();
    const c = await env().postComment('dan', track, { content: `hi ${naming(2)}` });
    const eventsBefore = await eventsForComment(env().pg, c.id);
    const before = await rowCounts(env().pg);
    const res = await request(env().app)
      .patch(`/api/comments/${c.id}`)
      .set(env().as('dan'))
      .send({ content: `hi ${naming(21)}` });
    expectError(res, 400, 'too_many_mentions');
    expect(await rowCounts(env().pg)).toEqual(before);
    expect(await eventsForComment(env().pg, c.id)).toEqual(eventsBefore);
    const { rows } = await env().pg.query('SELECT content, is_edited FROM comments WHERE id = $1', [
      c.id,
    ]);
    expect(rows).toEqual([{ content: c.content, is_edited: false }]);
  });
});

describe('what a mention event carries', () => {
  test('the comment with only its recipient among the named, and who sent it', async () => {
    const track = await env().newTrack();
    const c = await env().postComment('dan', track, { content: `look ${naming(20)}` });
    const events = await eventsForComment(env().pg, c.id);
    const mentions = events.filter((e) => e.type === 'mention');
    expect(mentions).toHaveLength(21); // 20 named + the album's creator
    for (const e of mentions) {
      const recipient = Number(e.stream.slice('user:'.length));
      expect(e.data).toEqual({
        type: 'mention',
        track_id: track,
        comment: { ...c, mentions: c.mentions.filter((m) => m.id === recipient) },
        from_user: { id: USERS.dan.id, username: USERS.dan.username },
      });
    }
    // The creator was not named: their mention names nobody.
    const creator = mentions.find((e) => e.stream === `user:${USERS.creator.id}`)!;
    expect((creator.data.comment as { mentions: unknown[] }).mentions).toEqual([]);
    // Each mention is about as big as the comment alone, not 20 names bigger.
    const newComment = events.find((e) => e.type === 'new_comment')!;
    const size = (x: unknown) => JSON.stringify(x).length;
    const withoutNames = size({ ...newComment.data, comment: { ...c, mentions: [] } });
    for (const e of mentions) expect(size(e.data)).toBeLessThan(withoutNames + 100);
  });
});
