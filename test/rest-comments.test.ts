/**
 * Comment endpoints (contract sections 3 and 4): create (JSON and form),
 * mentions and the events each change stores, listing with cursors, edit
 * and delete permissions. Events are checked in the `stream_events` table.
 */
import request from 'supertest';
import {
  TRACK_TIMED,
  TRACK_UNTIMED,
  USERS,
  eventsForComment,
  eventsOfStream,
  expectError,
  useRestEnv,
  type Comment,
  type EventRow,
  type UserKey,
} from './support/rest-env';

const env = useRestEnv();

const ref = (key: UserKey) => ({ id: USERS[key].id, username: USERS[key].username });
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

const list = (trackId: string, query = '', as: UserKey = 'bob') =>
  request(env().app).get(`/api/tracks/${trackId}/comments${query}`).set(env().as(as));

/** The events of one comment, keyed `type@stream`, to compare as a set. */
const eventKeys = (events: EventRow[]) => events.map((e) => `${e.type}@${e.stream}`).sort();

describe('POST /api/tracks/:trackId/comments', () => {
  test('JSON: 201 with the full comment; content trimmed; Location names it', async () => {
    const res = await request(env().app)
      .post(`/api/tracks/${TRACK_TIMED}/comments`)
      .set(env().as('bob'))
      .send({ content: '  great drop  ', timestamp: 12.5 });
    expect(res.status).toBe(201);
    const c = res.body.comment as Comment;
    expect(c).toEqual({
      id: expect.any(Number),
      track_id: TRACK_TIMED,
      user: ref('bob'),
      content: 'great drop',
      timestamp: 12.5,
      parent_id: null,
      mentions: [],
      is_edited: false,
      last_edited_at: null,
      created_at: expect.stringMatching(ISO),
    });
    expect(Math.abs(Date.parse(c.created_at) - Date.now())).toBeLessThan(60_000);
    expect(res.headers.location).toBe(`/api/comments/${c.id}`);
    const { rows } = await env().pg.query(
      'SELECT content, timestamp, user_id FROM comments WHERE id = $1',
      [c.id],
    );
    expect(rows).toEqual([{ content: 'great drop', timestamp: 12.5, user_id: USERS.bob.id }]);
  });

  test('the timestamp defaults to 0', async () => {
    const c = await env().postComment('bob', TRACK_TIMED, { content: 'no position' });
    expect(c.timestamp).toBe(0);
  });

  test('form-urlencoded: timestamp and parent_id arrive as strings and become numbers', async () => {
    const parent = await env().postComment('bob', TRACK_TIMED, { content: 'parent' });
    const res = await request(env().app)
      .post(`/api/tracks/${TRACK_TIMED}/comments`)
      .set(env().as('dan'))
      .type('form')
      .send({ content: ' a reply from a form ', timestamp: '33.25', parent_id: String(parent.id) });
    expect(res.status).toBe(201);
    expect(res.body.comment).toMatchObject({
      content: 'a reply from a form',
      timestamp: 33.25,
      parent_id: parent.id,
      user: ref('dan'),
    });
  });

  test('form-urlencoded without timestamp or parent_id uses the defaults', async () => {
    const res = await request(env().app)
      .post(`/api/tracks/${TRACK_TIMED}/comments`)
      .set(env().as('dan'))
      .type('form')
      .send('content=just+text');
    expect(res.status).toBe(201);
    expect(res.body.comment).toMatchObject({ content: 'just text', timestamp: 0, parent_id: null });
  });

  test('a timestamp exactly at the duration is accepted; any later one is not', async () => {
    const c = await env().postComment('bob', TRACK_TIMED, {
      content: 'the very end',
      timestamp: 60,
    });
    expect(c.timestamp).toBe(60);
    const late = await request(env().app)
      .post(`/api/tracks/${TRACK_TIMED}/comments`)
      .set(env().as('bob'))
      .send({ content: 'too late', timestamp: 60.001 });
    expectError(late, 400);
  });

  test('a track without a duration takes any finite timestamp >= 0', async () => {
    const c = await env().postComment('bob', TRACK_UNTIMED, { content: 'far in', timestamp: 1e7 });
    expect(c.timestamp).toBe(1e7);
  });

  test('content of exactly 2000 characters after trimming is accepted', async () => {
    const content = 'x'.repeat(2000);
    const c = await env().postComment('bob', TRACK_TIMED, { content: `\n  ${content}\t ` });
    expect(c.content).toBe(content);
  });

  test('a reply is listed with its parent_id', async () => {
    const track = await env().newTrack(100);
    const parent = await env().postComment('bob', track, { content: 'question', timestamp: 5 });
    const reply = await env().postComment('dan', track, {
      content: 'answer',
      timestamp: 5,
      parent_id: parent.id,
    });
    expect(reply.parent_id).toBe(parent.id);
    const res = await list(track);
    expect(res.body.comments.map((c: Comment) => [c.id, c.parent_id])).toEqual([
      [parent.id, null],
      [reply.id, parent.id],
    ]);
  });

  test('an unknown track → 404 (list and create)', async () => {
    expectError(await list('no-such-track'), 404, 'not_found');
    const res = await request(env().app)
      .post('/api/tracks/no-such-track/comments')
      .set(env().as('bob'))
      .send({ content: 'into the void' });
    expectError(res, 404, 'not_found');
  });
});

describe('mentions and the events of a new comment', () => {
  test('@usernames of existing users become mentions; unknown ones, repeats and e-mail addresses do not', async () => {
    const track = await env().newTrack();
    const c = await env().postComment('dan', track, {
      content: '@bob listen (@erin_5)! @nobody @bob again, mail x@tess.example or tess@bob.example',
    });
    expect(c.mentions).toEqual([ref('bob'), ref('erin')]);
    const { rows } = await env().pg.query(
      'SELECT user_id FROM comment_mentions WHERE comment_id = $1 ORDER BY user_id',
      [c.id],
    );
    expect(rows.map((r) => r.user_id)).toEqual([USERS.bob.id, USERS.erin.id]);
  });

  test('one new_comment on the track stream; one mention per named user and the album creator, never the author', async () => {
    const track = await env().newTrack();
    const c = await env().postComment('dan', track, { content: 'hey @bob and @erin_5 and @bob' });
    const events = await eventsForComment(env().pg, c.id);
    expect(eventKeys(events)).toEqual(
      [
        `new_comment@track:${track}`,
        `mention@user:${USERS.bob.id}`,
        `mention@user:${USERS.erin.id}`,
        `mention@user:${USERS.creator.id}`,
      ].sort(),
    );
    for (const e of events) {
      if (e.type === 'new_comment') {
        expect(e.data).toEqual({ type: 'new_comment', track_id: track, comment: c });
      } else {
        // A mention's comment names, of everyone named, only its recipient (section 7).
        expect(e.data).toEqual({
          type: 'mention',
          track_id: track,
          comment: { ...c, mentions: c.mentions.filter((m) => e.stream === `user:${m.id}`) },
          from_user: ref('dan'),
        });
      }
    }
  });

  test('the album creator commenting on their own track gets no mention; a named user still does', async () => {
    const track = await env().newTrack();
    const c = await env().postComment('creator', track, { content: 'thanks @bob' });
    expect(eventKeys(await eventsForComment(env().pg, c.id))).toEqual(
      [`new_comment@track:${track}`, `mention@user:${USERS.bob.id}`].sort(),
    );
  });

  test('naming yourself sends you no mention; naming the album creator sends them one, not two', async () => {
    const track = await env().newTrack();
    const c = await env().postComment('bob', track, { content: 'note to self @bob, cc @cara' });
    expect(eventKeys(await eventsForComment(env().pg, c.id))).toEqual(
      [`new_comment@track:${track}`, `mention@user:${USERS.creator.id}`].sort(),
    );
  });

  test('an e-mail address mentions nobody: only the creator is told', async () => {
    const track = await env().newTrack();
    const c = await env().postComment('bob', track, { content: 'write to dan@tess.example' });
    expect(c.mentions).toEqual([]);
    expect(eventKeys(await eventsForComment(env().pg, c.id))).toEqual(
      [`new_comment@track:${track}`, `mention@user:${USERS.creator.id}`].sort(),
    );
  });

  test('seqs are strictly increasing per stream, in the order the changes happened', async () => {
    const track = await env().newTrack();
    const made: Comment[] = [];
    for (let i = 0; i < 4; i++) {
      made.push(
        await env().postComment(i % 2 ? 'bob' : 'dan', track, { content: `n${i} @erin_5` }),
      );
    }
    const trackEvents = await eventsOfStream(env().pg, `track:${track}`);
    expect(trackEvents.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(trackEvents.map((e) => (e.data.comment as Comment).id)).toEqual(made.map((c) => c.id));

    for (const user of ['erin', 'creator'] as const) {
      const mine = (await eventsOfStream(env().pg, `user:${USERS[user].id}`)).filter((e) =>
        made.some((c) => c.id === (e.data.comment as Comment).id),
      );
      expect(mine.map((e) => (e.data.comment as Comment).id)).toEqual(made.map((c) => c.id));
      for (let i = 1; i < mine.length; i++) expect(mine[i]!.seq).toBeGreaterThan(mine[i - 1]!.seq);
    }
    // No gaps either: the head row agrees with the last seq.
    const { rows } = await env().pg.query('SELECT last_seq FROM stream_heads WHERE stream = $1', [
      `track:${track}`,
    ]);
    expect(Number(rows[0].last_seq)).toBe(4);
  });
});

describe('GET /api/tracks/:trackId/comments', () => {
  let track: string;
  let made: Comment[];
  const COUNT = 55;

  beforeAll(async () => {
    track = await env().newTrack(1000);
    made = [];
    // Timestamps repeat (ties) and are not in creation order.
    for (let i = 0; i < COUNT; i++) {
      made.push(
        await env().postComment('bob', track, { content: `c${i}`, timestamp: (i * 7) % 5 }),
      );
    }
  });

  const byTimestamp = () =>
    [...made].sort((a, b) => a.timestamp - b.timestamp || a.id - b.id).map((c) => c.id);
  const byCreation = () => made.map((c) => c.id);

  async function walk(
    order: string | null,
    limit: number,
  ): Promise<{ ids: number[]; pages: number }> {
    const ids: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const params = new URLSearchParams({ limit: String(limit) });
      if (order) params.set('order', order);
      if (cursor) params.set('cursor', cursor);
      const res = await list(track, `?${params}`);
      expect(res.status).toBe(200);
      expect(res.body.comments.length).toBeLessThanOrEqual(limit);
      ids.push(...res.body.comments.map((c: Comment) => c.id));
      cursor = res.body.next_cursor;
      pages++;
      if (pages > COUNT + 2) throw new Error('pagination does not end');
    } while (cursor !== null);
    return { ids, pages };
  }

  test('default: ordered by timestamp (ties by id), 50 per page, with a next_cursor', async () => {
    const res = await list(track);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['comments', 'next_cursor']);
    expect(res.body.comments).toHaveLength(50);
    expect(res.body.comments.map((c: Comment) => c.id)).toEqual(byTimestamp().slice(0, 50));
    expect(typeof res.body.next_cursor).toBe('string');
    // Items have the full comment shape.
    expect(res.body.comments[0]).toEqual(made.find((c) => c.id === res.body.comments[0].id));
  });

  test('order=created lists in creation order', async () => {
    const res = await list(track, '?order=created&limit=200');
    expect(res.body.comments.map((c: Comment) => c.id)).toEqual(byCreation());
    expect(res.body.next_cursor).toBeNull();
  });

  test('limit=200 is allowed and returns everything with next_cursor null', async () => {
    const res = await list(track, '?limit=200');
    expect(res.status).toBe(200);
    expect(res.body.comments.map((c: Comment) => c.id)).toEqual(byTimestamp());
    expect(res.body.next_cursor).toBeNull();
  });

  test.each([
    ['timestamp', 7],
    ['created', 7],
    ['timestamp', 1],
    ['created', 11],
    [null, 5],
  ])(
    'cursor pagination (order=%s, limit=%s) visits every comment exactly once',
    async (order, limit) => {
      const { ids, pages } = await walk(order, limit);
      expect(ids).toEqual(order === 'created' ? byCreation() : byTimestamp());
      expect(pages).toBe(Math.ceil(COUNT / limit));
    },
  );

  test('a page exactly filling the limit at the end has next_cursor null', async () => {
    const res = await list(track, `?limit=${COUNT}`);
    expect(res.body.comments).toHaveLength(COUNT);
    expect(res.body.next_cursor).toBeNull();
  });

  test('a track with no comments: empty list, next_cursor null', async () => {
    const empty = await env().newTrack();
    const res = await list(empty);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ comments: [], next_cursor: null });
  });

  test.each(['0', '201', 'x', '-1', '1.5', '', '1e2x'])('limit=%s → 400', async (limit) => {
    expectError(await list(track, `?limit=${limit}`), 400);
  });

  test('order must be timestamp or created', async () => {
    expectError(await list(track, '?order=newest'), 400);
  });

  test('a cursor made for the other order → 400', async () => {
    const byTs = await list(track, '?limit=3');
    const byCreated = await list(track, '?limit=3&order=created');
    expectError(await list(track, `?order=created&cursor=${byTs.body.next_cursor}`), 400);
    expectError(await list(track, `?cursor=${byCreated.body.next_cursor}`), 400);
  });

  test.each([
    ['garbage', 'garbage!!'],
    ['base64 of a non-cursor', Buffer.from('{"a":1}').toString('base64url')],
    ['base64 of a wrong array', Buffer.from('["t","x",1]').toString('base64url')],
    ['an id beyond int4', Buffer.from('["t",0,100000000000000000000]').toString('base64url')],
    ['a negative id', Buffer.from('["t",0,-5]').toString('base64url')],
    ['a fractional id', Buffer.from('["t",0,1.5]').toString('base64url')],
    ['a non-finite timestamp', Buffer.from('["t",1e999,1]').toString('base64url')],
  ])('a %s cursor → 400', async (_name, cursor) => {
    expectError(await list(track, `?cursor=${encodeURIComponent(cursor)}`), 400);
  });

  test('unknown query parameters → 400', async () => {
    expectError(await list(track, '?page=2'), 400);
    expectError(await list(track, '?user_id=2'), 400);
  });

  test('a repeated parameter → 400', async () => {
    expectError(await list(track, '?limit=5&limit=6'), 400);
  });
});

describe('PATCH /api/comments/:commentId', () => {
  test('the author edits: content trimmed, is_edited, last_edited_at, and one comment_edited event', async () => {
    const track = await env().newTrack();
    const c = await env().postComment('bob', track, { content: 'first take', timestamp: 3 });
    const res = await request(env().app)
      .patch(`/api/comments/${c.id}`)
      .set(env().as('bob'))
      .send({ content: '  second take ' });
    expect(res.status).toBe(200);
    const edited = res.body.comment as Comment;
    expect(edited).toEqual({
      ...c,
      content: 'second take',
      is_edited: true,
      last_edited_at: expect.stringMatching(ISO),
    });
    expect(Date.parse(edited.last_edited_at!)).toBeGreaterThanOrEqual(Date.parse(c.created_at));

    const listed = await list(track);
    expect(listed.body.comments).toEqual([edited]);

    const events = (await eventsForComment(env().pg, c.id)).filter(
      (e) => e.type === 'comment_edited',
    );
    expect(events).toHaveLength(1);
    expect(events[0]!.stream).toBe(`track:${track}`);
    expect(events[0]!.data).toEqual({
      type: 'comment_edited',
      track_id: track,
      comment_id: c.id,
      content: 'second take',
      timestamp: 3,
      is_edited: true,
      last_edited_at: edited.last_edited_at,
    });
  });

  test('a form-urlencoded edit works too', async () => {
    const c = await env().postComment('bob', TRACK_UNTIMED, { content: 'form edit me' });
    const res = await request(env().app)
      .patch(`/api/comments/${c.id}`)
      .set(env().as('bob'))
      .type('form')
      .send({ content: 'edited by form' });
    expect(res.status).toBe(200);
    expect(res.body.comment.content).toBe('edited by form');
  });

  test.each(['dan', 'team', 'creator'] as const)(
    '%s (not the author) → 403, and nothing changes',
    async (who) => {
      const c = await env().postComment('bob', TRACK_UNTIMED, { content: 'mine alone' });
      const res = await request(env().app)
        .patch(`/api/comments/${c.id}`)
        .set(env().as(who))
        .send({ content: 'hijacked' });
      expectError(res, 403, 'forbidden');
      const { rows } = await env().pg.query(
        'SELECT content, is_edited FROM comments WHERE id = $1',
        [c.id],
      );
      expect(rows).toEqual([{ content: 'mine alone', is_edited: false }]);
      expect((await eventsForComment(env().pg, c.id)).map((e) => e.type)).not.toContain(
        'comment_edited',
      );
    },
  );

  test('content rules apply to edits', async () => {
    const c = await env().postComment('bob', TRACK_UNTIMED, { content: 'rules' });
    const patch = (body: object) =>
      request(env().app).patch(`/api/comments/${c.id}`).set(env().as('bob')).send(body);
    expectError(await patch({ content: '   ' }), 400);
    expectError(await patch({ content: '' }), 400);
    expectError(await patch({ content: 'y'.repeat(2001) }), 400);
    expectError(await patch({}), 400);
    expectError(await patch({ content: 'ok', timestamp: 5 }), 400);
    expectError(await patch({ content: 7 }), 400);
    const ok = await patch({ content: 'z'.repeat(2000) });
    expect(ok.status).toBe(200);
  });

  test('a user named for the first time gets a mention; one already named does not get a second', async () => {
    const track = await env().newTrack();
    const c = await env().postComment('dan', track, { content: 'hey @bob' });
    const res = await request(env().app)
      .patch(`/api/comments/${c.id}`)
      .set(env().as('dan'))
      .send({ content: 'hey @bob, and @erin_5 too' });
    expect(res.status).toBe(200);
    const edited = res.body.comment as Comment;
    expect(edited.mentions).toEqual([ref('bob'), ref('erin')]);

    const mentions = (await eventsForComment(env().pg, c.id)).filter((e) => e.type === 'mention');
    const perStream = (user: UserKey) =>
      mentions.filter((e) => e.stream === `user:${USERS[user].id}`);
    expect(perStream('bob')).toHaveLength(1);
    expect(perStream('creator')).toHaveLength(1);
    expect(perStream('dan')).toHaveLength(0);
    const erin = perStream('erin');
    expect(erin).toHaveLength(1);
    expect(erin[0]!.data).toEqual({
      type: 'mention',
      track_id: track,
      comment: { ...edited, mentions: [ref('erin')] },
      from_user: ref('dan'),
    });
  });

  test('an edit that drops mentions updates the list and tells nobody new', async () => {
    const track = await env().newTrack();
    const c = await env().postComment('dan', track, { content: 'hi @bob @erin_5' });
    const before = (await eventsForComment(env().pg, c.id)).length;
    const res = await request(env().app)
      .patch(`/api/comments/${c.id}`)
      .set(env().as('dan'))
      .send({ content: 'hi @erin_5' });
    expect(res.body.comment.mentions).toEqual([ref('erin')]);
    const after = await eventsForComment(env().pg, c.id);
    expect(after.length).toBe(before + 1);
    expect(after.filter((e) => e.type === 'comment_edited')).toHaveLength(1);
  });

  test('an unknown or malformed comment id → 404', async () => {
    const patch = (id: string) =>
      request(env().app).patch(`/api/comments/${id}`).set(env().as('bob')).send({ content: 'x' });
    expectError(await patch('99999999'), 404, 'not_found');
    expectError(await patch('abc'), 404);
    expectError(await patch('0'), 404);
  });
});

describe('DELETE /api/comments/:commentId', () => {
  const del = (id: number | string, as: UserKey) =>
    request(env().app).delete(`/api/comments/${id}`).set(env().as(as));

  test.each([
    ['the author', 'bob'],
    ["the album's creator", 'creator'],
    ['a team member', 'team'],
  ] as const)(
    '%s may delete (204); the comment is gone and comment_deleted is stored',
    async (_name, who) => {
      const track = await env().newTrack();
      const c = await env().postComment('bob', track, { content: 'short-lived' });
      const res = await del(c.id, who);
      expect(res.status).toBe(204);
      expect(res.text).toBe('');
      expect((await list(track)).body.comments).toEqual([]);
      const deleted = (await eventsForComment(env().pg, c.id)).filter(
        (e) => e.type === 'comment_deleted',
      );
      expect(deleted).toHaveLength(1);
      expect(deleted[0]!.stream).toBe(`track:${track}`);
      expect(deleted[0]!.data).toEqual({
        type: 'comment_deleted',
        track_id: track,
        comment_id: c.id,
      });
      expectError(await del(c.id, who), 404);
    },
  );

  test('anyone else → 403, and the comment stays', async () => {
    const track = await env().newTrack();
    const c = await env().postComment('bob', track, { content: 'stays' });
    expectError(await del(c.id, 'dan'), 403, 'forbidden');
    expectError(await del(c.id, 'erin'), 403, 'forbidden');
    expect((await list(track)).body.comments.map((x: Comment) => x.id)).toEqual([c.id]);
    expect((await eventsForComment(env().pg, c.id)).map((e) => e.type)).not.toContain(
      'comment_deleted',
    );
  });

  test('deleting a parent deletes its replies at every depth, each with comment_deleted', async () => {
    const track = await env().newTrack();
    const parent = await env().postComment('bob', track, { content: 'root @erin_5' });
    const reply = await env().postComment('dan', track, { content: 'reply', parent_id: parent.id });
    const nested = await env().postComment('erin', track, {
      content: 'nested',
      parent_id: reply.id,
    });
    const sibling = await env().postComment('dan', track, { content: 'unrelated' });

    expect((await del(parent.id, 'bob')).status).toBe(204);

    expect((await list(track)).body.comments.map((c: Comment) => c.id)).toEqual([sibling.id]);
    const { rows } = await env().pg.query(
      'SELECT id FROM comments WHERE id = ANY($1::int[]) ORDER BY id',
      [[parent.id, reply.id, nested.id, sibling.id]],
    );
    expect(rows.map((r) => r.id)).toEqual([sibling.id]);
    const mentionRows = await env().pg.query(
      'SELECT 1 FROM comment_mentions WHERE comment_id = $1',
      [parent.id],
    );
    expect(mentionRows.rows).toHaveLength(0);

    const deletedEvents = (await eventsOfStream(env().pg, `track:${track}`)).filter(
      (e) => e.type === 'comment_deleted',
    );
    expect(deletedEvents.map((e) => e.data.comment_id).sort()).toEqual(
      [parent.id, reply.id, nested.id].sort(),
    );
    for (const e of deletedEvents) {
      expect(e.data).toEqual({
        type: 'comment_deleted',
        track_id: track,
        comment_id: e.data.comment_id,
      });
    }
    expectError(await del(reply.id, 'dan'), 404);
    expectError(
      await request(env().app)
        .patch(`/api/comments/${nested.id}`)
        .set(env().as('erin'))
        .send({ content: 'x' }),
      404,
    );
  });

  test('an unknown or malformed comment id → 404', async () => {
    expectError(await del(99999999, 'team'), 404, 'not_found');
    expectError(await del('x1', 'team'), 404);
  });
});
