/**
 * Contract section 2 (identity): which credentials make a request a user's,
 * which never do, and who may call the admin API.
 */
import { SignJWT, UnsecuredJWT } from 'jose';
import request from 'supertest';
import {
  TEST_ADMIN_TOKEN,
  TEST_AUTH_SECRET,
  TRACK_UNTIMED,
  USERS,
  adminAuth,
  expectError,
  useRestEnv,
} from './support/rest-env';

const env = useRestEnv();

const secretKey = (secret = TEST_AUTH_SECRET) => new TextEncoder().encode(secret);
const inOneHour = () => Math.floor(Date.now() / 1000) + 3600;

/** A JWT with full control over header and claims (what the main application must never send). */
async function jwt(
  claims: { sub?: string; exp?: number | null },
  opts: { secret?: string; alg?: string } = {},
): Promise<string> {
  let builder = new SignJWT({}).setProtectedHeader({ alg: opts.alg ?? 'HS256', typ: 'JWT' });
  if (claims.sub !== undefined) builder = builder.setSubject(claims.sub);
  const exp = claims.exp === undefined ? inOneHour() : claims.exp;
  if (exp !== null) builder = builder.setExpirationTime(exp);
  return builder.sign(secretKey(opts.secret));
}

const listPath = `/api/tracks/${TRACK_UNTIMED}/comments`;

describe('user identity', () => {
  test('a Bearer JWT is accepted and names the acting user', async () => {
    const res = await request(env().app)
      .post(listPath)
      .set('Authorization', `Bearer ${env().tokens.bob}`)
      .send({ content: 'via header' });
    expect(res.status).toBe(201);
    expect(res.body.comment.user).toEqual({ id: USERS.bob.id, username: USERS.bob.username });
  });

  test('the access_token cookie is accepted (what EventSource sends)', async () => {
    const res = await request(env().app)
      .post(listPath)
      .set('Cookie', `theme=dark; access_token=${env().tokens.dan}; other=1`)
      .send({ content: 'via cookie' });
    expect(res.status).toBe(201);
    expect(res.body.comment.user.id).toBe(USERS.dan.id);
  });

  test('the Authorization header wins over the cookie', async () => {
    const res = await request(env().app)
      .post(listPath)
      .set('Authorization', `Bearer ${env().tokens.bob}`)
      .set('Cookie', `access_token=${env().tokens.dan}`)
      .send({ content: 'header first' });
    expect(res.status).toBe(201);
    expect(res.body.comment.user.id).toBe(USERS.bob.id);
  });

  test('an invalid Authorization header is not rescued by a valid cookie', async () => {
    const res = await request(env().app)
      .get(listPath)
      .set('Authorization', 'Bearer not-a-jwt')
      .set('Cookie', `access_token=${env().tokens.dan}`);
    expectError(res, 401);
  });

  test.each(['access_token', 'token'])(
    'a token in the query string (?%s=) is refused',
    async (name) => {
      const res = await request(env().app).get(`${listPath}?${name}=${env().tokens.bob}`);
      expectError(res, 401);
    },
  );

  test('?user_id= alone is not an identity', async () => {
    expectError(await request(env().app).get(`${listPath}?user_id=${USERS.bob.id}`), 401);
    const post = await request(env().app)
      .post(`${listPath}?user_id=${USERS.bob.id}`)
      .send({ content: 'impersonation attempt' });
    expectError(post, 401);
  });

  test('no credentials at all → 401', async () => {
    expectError(await request(env().app).get(listPath), 401, 'unauthenticated');
  });

  test.each([
    ['garbage', 'Bearer abc.def.ghi'],
    ['not a JWT at all', 'Bearer hello'],
    ['Basic scheme', `Basic ${Buffer.from('bob:pw').toString('base64')}`],
    ['Bearer without a token', 'Bearer '],
    ['token without scheme', 'TOKEN_PLACEHOLDER'],
  ])('malformed Authorization (%s) → 401', async (_name, header) => {
    const value = header === 'TOKEN_PLACEHOLDER' ? env().tokens.bob : header;
    expectError(await request(env().app).get(listPath).set('Authorization', value), 401);
  });

  test('garbage in the cookie → 401', async () => {
    expectError(await request(env().app).get(listPath).set('Cookie', 'access_token=garbage'), 401);
  });

  const badTokens: [string, () => Promise<string>][] = [
    ['expired', () => jwt({ sub: '2', exp: Math.floor(Date.now() / 1000) - 5 })],
    [
      'signed with another secret',
      () => jwt({ sub: '2' }, { secret: 'another-secret-0123456789' }),
    ],
    ['HS384 with the right secret', () => jwt({ sub: '2' }, { alg: 'HS384' })],
    [
      'alg none',
      async () => new UnsecuredJWT({}).setSubject('2').setExpirationTime(inOneHour()).encode(),
    ],
    [
      'alg none with the real signature stripped',
      async () => {
        const real = await jwt({ sub: '2' });
        const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString(
          'base64url',
        );
        return `${header}.${real.split('.')[1]}.`;
      },
    ],
    ['missing exp', () => jwt({ sub: '2', exp: null })],
    ['missing sub', () => jwt({})],
    ['non-decimal sub "bob"', () => jwt({ sub: 'bob' })],
    ['sub with a leading zero', () => jwt({ sub: '02' })],
    ['sub "2.0"', () => jwt({ sub: '2.0' })],
    ['sub "0x2"', () => jwt({ sub: '0x2' })],
    ['sub "-2"', () => jwt({ sub: '-2' })],
    ['sub " 2"', () => jwt({ sub: ' 2' })],
    ['sub naming no user', () => jwt({ sub: '999999' })],
    [
      'sub as a JSON number',
      () =>
        new SignJWT({ sub: 2 } as unknown as Record<string, unknown>)
          .setProtectedHeader({ alg: 'HS256' })
          .setExpirationTime(inOneHour())
          .sign(secretKey()),
    ],
    [
      'exp as a string',
      () =>
        new SignJWT({ exp: String(inOneHour()) } as unknown as Record<string, unknown>)
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject('2')
          .sign(secretKey()),
    ],
    [
      'nbf in the future',
      () =>
        new SignJWT({})
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject('2')
          .setNotBefore(inOneHour() - 60)
          .setExpirationTime(inOneHour())
          .sign(secretKey()),
    ],
    ['sub beyond int4', () => jwt({ sub: '99999999999' })],
  ];

  test.each(badTokens)('token %s → 401 (header and cookie)', async (_name, make) => {
    const token = await make();
    expectError(
      await request(env().app).get(listPath).set('Authorization', `Bearer ${token}`),
      401,
      'unauthenticated',
    );
    expectError(
      await request(env().app).get(listPath).set('Cookie', `access_token=${token}`),
      401,
      'unauthenticated',
    );
  });

  test('the hand-made tokens above are refused for their defect only: a well-formed one passes', async () => {
    const token = await jwt({ sub: String(USERS.bob.id) });
    expect(
      (await request(env().app).get(listPath).set('Authorization', `Bearer ${token}`)).status,
    ).toBe(200);
  });

  test('the admin token is not a user identity', async () => {
    expectError(await request(env().app).get(listPath).set(adminAuth), 401);
  });

  test('every user endpoint refuses a request without credentials and changes nothing', async () => {
    const mine = await env().postComment('bob', TRACK_UNTIMED, { content: 'to edit' });
    const calls = [
      () => request(env().app).get(listPath),
      () => request(env().app).post(listPath).send({ content: 'x' }),
      () => request(env().app).patch(`/api/comments/${mine.id}`).send({ content: 'y' }),
      () => request(env().app).delete(`/api/comments/${mine.id}`),
    ];
    for (const call of calls) expectError(await call(), 401);
    // The comment is untouched by the refused calls.
    const list = await request(env().app).get(listPath).set(env().as('bob'));
    expect(list.body.comments.find((c: { id: number }) => c.id === mine.id)?.content).toBe(
      'to edit',
    );
  });
});

describe('admin identity', () => {
  const path = `/api/admin/users/${USERS.bob.id}`;
  const body = { username: USERS.bob.username, is_creator: false, is_team: false };

  test('ADMIN_TOKEN is accepted', async () => {
    const res = await request(env().app).put(path).set(adminAuth).send(body);
    expect(res.status).toBe(200);
  });

  test('no Authorization header → 401', async () => {
    expectError(await request(env().app).put(path).send(body), 401);
  });

  test('a user JWT is refused', async () => {
    const res = await request(env().app).put(path).set(env().as('team')).send(body);
    expect([401, 403]).toContain(res.status);
    expectError(res, res.status);
  });

  test('a wrong token (even a prefix of the right one) is refused', async () => {
    for (const token of [
      'wrong-admin-token-0123456789',
      TEST_ADMIN_TOKEN.slice(0, -1),
      `${TEST_ADMIN_TOKEN}x`,
    ]) {
      const res = await request(env().app)
        .put(path)
        .set('Authorization', `Bearer ${token}`)
        .send(body);
      expect([401, 403]).toContain(res.status);
      expectError(res, res.status);
    }
  });

  test('the admin token in a cookie or the query string is refused', async () => {
    const cookie = await request(env().app)
      .put(path)
      .set('Cookie', `access_token=${TEST_ADMIN_TOKEN}`)
      .send(body);
    expectError(cookie, 401);
    const query = await request(env().app)
      .put(`${path}?access_token=${TEST_ADMIN_TOKEN}`)
      .send(body);
    expectError(query, 401);
  });

  test('a refused admin call changes nothing', async () => {
    const res = await request(env().app)
      .put(path)
      .set(env().as('bob'))
      .send({ username: 'bob_renamed', is_creator: true, is_team: true });
    expect([401, 403]).toContain(res.status);
    const { rows } = await env().pg.query('SELECT username, is_team FROM users WHERE id = $1', [
      USERS.bob.id,
    ]);
    expect(rows[0]).toEqual({ username: USERS.bob.username, is_team: false });
  });
});
