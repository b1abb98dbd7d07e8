/**
 * The admin catalogue API (contract sections 3 and 4): upserts of users,
 * albums and tracks pushed by the main application.
 */
import request from 'supertest';
import { ALBUM_ID, USERS, adminAuth, expectError, useRestEnv } from './support/rest-env';

const env = useRestEnv();

const putUser = (id: number | string, body: unknown) =>
  request(env().app)
    .put(`/api/admin/users/${id}`)
    .set(adminAuth)
    .send(body as object);
const putAlbum = (id: number | string, body: unknown) =>
  request(env().app)
    .put(`/api/admin/albums/${id}`)
    .set(adminAuth)
    .send(body as object);
const putTrack = (id: string, body: unknown) =>
  request(env().app)
    .put(`/api/admin/tracks/${id}`)
    .set(adminAuth)
    .send(body as object);

describe('PUT /api/admin/users/:userId', () => {
  test('creates with 201, then updates with 200; the row follows', async () => {
    const created = await putUser(100, { username: 'newbie', is_creator: false, is_team: false });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      user: { id: 100, username: 'newbie', is_creator: false, is_team: false },
    });
    const updated = await putUser(100, { username: 'newbie2', is_creator: true, is_team: true });
    expect(updated.status).toBe(200);
    expect(updated.body.user).toEqual({
      id: 100,
      username: 'newbie2',
      is_creator: true,
      is_team: true,
    });
    const { rows } = await env().pg.query(
      'SELECT username, is_creator, is_team FROM users WHERE id = 100',
    );
    expect(rows).toEqual([{ username: 'newbie2', is_creator: true, is_team: true }]);
  });

  test('the roles default to false', async () => {
    const res = await putUser(101, { username: 'plain_101' });
    expect(res.status).toBe(201);
    expect(res.body.user).toMatchObject({ is_creator: false, is_team: false });
  });

  test.each([
    ['1 character', 'a'],
    ['32 characters', 'x'.repeat(32)],
    ['digits and underscores', 'A_1_b_2'],
  ])('username of %s is accepted', async (_name, username) => {
    const id = 200 + username.length;
    expect((await putUser(id, { username })).status).toBe(201);
  });

  test.each([
    ['empty', ''],
    ['33 characters', 'y'.repeat(33)],
    ['a space', 'with space'],
    ['a dash', 'with-dash'],
    ['a dot', 'with.dot'],
    ['an @', '@at'],
    ['non-ASCII letters', 'zoë'],
    ['a number instead of a string', 42],
    ['null', null],
  ])('username with %s → 400', async (_name, username) => {
    expectError(await putUser(300, { username }), 400);
    const { rows } = await env().pg.query('SELECT 1 FROM users WHERE id = 300');
    expect(rows).toHaveLength(0);
  });

  test('a missing username → 400', async () => {
    expectError(await putUser(301, { is_team: true }), 400);
  });

  test('a username another user has → 409, and nothing changes', async () => {
    const res = await putUser(302, { username: USERS.bob.username });
    expectError(res, 409);
    // Renaming an existing user onto a taken name is refused the same way.
    expectError(await putUser(USERS.dan.id, { username: USERS.bob.username }), 409);
    const { rows } = await env().pg.query('SELECT id, username FROM users WHERE id IN (302, $1)', [
      USERS.dan.id,
    ]);
    expect(rows).toEqual([{ id: USERS.dan.id, username: USERS.dan.username }]);
  });

  test('re-sending a user with its own username is fine (200)', async () => {
    const u = USERS.erin;
    const res = await putUser(u.id, { username: u.username, is_creator: false, is_team: false });
    expect(res.status).toBe(200);
  });

  test('roles must be booleans', async () => {
    expectError(await putUser(303, { username: 'roles', is_team: 'yes' }), 400);
    expectError(await putUser(303, { username: 'roles', is_creator: 1 }), 400);
  });

  test('unknown fields → 400', async () => {
    expectError(await putUser(304, { username: 'extra', is_admin: true }), 400);
  });

  test.each(['abc', '0', '-1', '1.5', '1e3', '99999999999', '01'])(
    'malformed id %s → 400',
    async (id) => {
      expectError(await putUser(id, { username: 'malformed' }), 400);
    },
  );
});

describe('PUT /api/admin/albums/:albumId', () => {
  test('creates with 201, then updates with 200', async () => {
    const created = await putAlbum(50, { title: 'Album 50', created_by_id: USERS.creator.id });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      album: { id: 50, title: 'Album 50', created_by_id: USERS.creator.id },
    });
    const updated = await putAlbum(50, { title: 'Album 50 remaster', created_by_id: USERS.bob.id });
    expect(updated.status).toBe(200);
    expect(updated.body.album).toEqual({
      id: 50,
      title: 'Album 50 remaster',
      created_by_id: USERS.bob.id,
    });
  });

  test('created_by_id must name an existing user → 400 otherwise', async () => {
    expectError(await putAlbum(51, { title: 'Orphan', created_by_id: 9999 }), 400);
    const { rows } = await env().pg.query('SELECT 1 FROM albums WHERE id = 51');
    expect(rows).toHaveLength(0);
  });

  test.each([
    ['no title', { created_by_id: 1 }],
    ['empty title', { title: '   ', created_by_id: 1 }],
    ['a NUL in the title', { title: 'bad\u0000title', created_by_id: 1 }],
    ['a title over 300 characters', { title: 't'.repeat(301), created_by_id: 1 }],
    ['no created_by_id', { title: 'T' }],
    ['created_by_id as a string', { title: 'T', created_by_id: '1' }],
    ['created_by_id 0', { title: 'T', created_by_id: 0 }],
    ['an unknown field', { title: 'T', created_by_id: 1, genre: 'jazz' }],
  ])('%s → 400', async (_name, body) => {
    expectError(await putAlbum(52, body), 400);
  });

  test.each(['x', '0', '2.5'])('malformed id %s → 400', async (id) => {
    expectError(await putAlbum(id, { title: 'T', created_by_id: 1 }), 400);
  });
});

describe('PUT /api/admin/tracks/:trackId', () => {
  test('creates with 201, then updates with 200; duration_s is optional', async () => {
    const created = await putTrack('adm-track-1', { title: 'One', album_id: ALBUM_ID });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      track: { id: 'adm-track-1', title: 'One', album_id: ALBUM_ID, duration_s: null },
    });
    const updated = await putTrack('adm-track-1', {
      title: 'One (edit)',
      album_id: ALBUM_ID,
      duration_s: 123.5,
    });
    expect(updated.status).toBe(200);
    expect(updated.body.track).toEqual({
      id: 'adm-track-1',
      title: 'One (edit)',
      album_id: ALBUM_ID,
      duration_s: 123.5,
    });
  });

  test('track ids are opaque strings (uuid-like ids work)', async () => {
    const id = '3f2b8c1e-8a3d-4b61-9d0c-2f1e5b7a9c40';
    expect((await putTrack(id, { title: 'uuid', album_id: ALBUM_ID, duration_s: 1 })).status).toBe(
      201,
    );
    const list = await request(env().app).get(`/api/tracks/${id}/comments`).set(env().as('bob'));
    expect(list.status).toBe(200);
  });

  test('album_id must name an existing album → 400 otherwise', async () => {
    expectError(await putTrack('adm-track-2', { title: 'Two', album_id: 4242 }), 400);
    const { rows } = await env().pg.query("SELECT 1 FROM tracks WHERE id = 'adm-track-2'");
    expect(rows).toHaveLength(0);
  });

  test.each([
    ['negative duration', { title: 'T', album_id: 1, duration_s: -1 }],
    ['zero duration', { title: 'T', album_id: 1, duration_s: 0 }],
    ['duration as a string', { title: 'T', album_id: 1, duration_s: '60' }],
    ['no album_id', { title: 'T' }],
    ['no title', { album_id: 1 }],
    ['an unknown field', { title: 'T', album_id: 1, artist: 'x' }],
  ])('%s → 400', async (_name, body) => {
    expectError(await putTrack('adm-track-3', body), 400);
  });

  test('a duration of 1e999 (Infinity once parsed) → 400', async () => {
    const res = await request(env().app)
      .put('/api/admin/tracks/adm-track-4')
      .set(adminAuth)
      .set('Content-Type', 'application/json')
      .send('{"title":"T","album_id":1,"duration_s":1e999}');
    expectError(res, 400);
  });

  test.each(['has%20space', 'semi%3Bcolon', 'x'.repeat(129)])(
    'malformed id %s → 400',
    async (id) => {
      expectError(await putTrack(id, { title: 'T', album_id: ALBUM_ID }), 400);
    },
  );
});

describe('admin request bodies', () => {
  test('a non-JSON content type → 415', async () => {
    const text = await request(env().app)
      .put('/api/admin/users/400')
      .set(adminAuth)
      .set('Content-Type', 'text/plain')
      .send('username=textplain');
    expectError(text, 415);
    const form = await request(env().app)
      .put('/api/admin/users/400')
      .set(adminAuth)
      .type('form')
      .send({ username: 'formuser' });
    expectError(form, 415);
    const { rows } = await env().pg.query('SELECT 1 FROM users WHERE id = 400');
    expect(rows).toHaveLength(0);
  });

  test('invalid JSON → 400', async () => {
    const res = await request(env().app)
      .put('/api/admin/users/401')
      .set(adminAuth)
      .set('Content-Type', 'application/json')
      .send('{"username": ');
    expectError(res, 400);
  });

  test('a JSON array body → 400', async () => {
    const res = await request(env().app)
      .put('/api/admin/users/402')
      .set(adminAuth)
      .send([{ username: 'arr' }]);
    expectError(res, 400);
  });

  test('a body over 16 KB → 413', async () => {
    const res = await putAlbum(53, { title: 'x'.repeat(17 * 1024), created_by_id: 1 });
    expectError(res, 413);
  });

  test('an unknown admin path → 404 with the error shape', async () => {
    expectError(await request(env().app).put('/api/admin/genres/1').set(adminAuth).send({}), 404);
  });
});

describe('role changes take effect at once', () => {
  test('a user made team member can delete others’ comments right after the upsert', async () => {
    const track = await env().newTrack();
    const comment = await env().postComment('bob', track, { content: 'delete me later' });
    expectError(
      await request(env().app).delete(`/api/comments/${comment.id}`).set(env().as('dan')),
      403,
    );
    const promoted = await putUser(USERS.dan.id, { username: USERS.dan.username, is_team: true });
    expect(promoted.status).toBe(200);
    try {
      const res = await request(env().app)
        .delete(`/api/comments/${comment.id}`)
        .set(env().as('dan'));
      expect(res.status).toBe(204);
    } finally {
      await putUser(USERS.dan.id, { username: USERS.dan.username, is_team: false });
    }
  });
});
