/**
 * Operations and HTTP hygiene: health/readiness/metrics, CORS with
 * credentials for listed origins only, helmet headers, and logs that never
 * contain a token, a cookie or the admin token.
 */
import request from 'supertest';
import type { RunningServer } from '../src/server';
import {
  TEST_ADMIN_TOKEN,
  TRACK_UNTIMED,
  USERS,
  adminAuth,
  captureLogger,
  expectError,
  useRestEnv,
} from './support/rest-env';

const ALLOWED_ORIGIN = 'https://a.example';
const listPath = `/api/tracks/${TRACK_UNTIMED}/comments`;

/** Everything the main server logs. */
const logs = captureLogger('trace');
/** The main server: CORS_ORIGINS set, logging everything into memory. */
const env = useRestEnv({
  env: { CORS_ORIGINS: `${ALLOWED_ORIGIN}, https://b.example`, LOG_LEVEL: 'info' },
  logger: logs.logger,
});
/** A second server on the same database with CORS_ORIGINS unset (shut down with `env`). */
let plain: RunningServer;

beforeAll(async () => {
  plain = await env().startExtraServer();
});

describe('health, readiness, metrics', () => {
  test('/healthz answers 200 without credentials', async () => {
    const res = await request(env().app).get('/healthz');
    expect(res.status).toBe(200);
  });

  test('/readyz answers 200 while the database and the bus answer', async () => {
    const res = await request(env().app).get('/readyz');
    expect(res.status).toBe(200);
    expect(Object.values(res.body.checks as Record<string, boolean>).every(Boolean)).toBe(true);
  });

  test('/metrics is Prometheus text with trackcomments_ metrics, including request durations by route', async () => {
    await request(env().app).get(listPath).set(env().as('bob')).expect(200);
    const res = await request(env().app).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toMatch(/^# HELP trackcomments_\w+ /m);
    expect(res.text).toMatch(/^# TYPE trackcomments_\w+ (counter|gauge|histogram)$/m);
    expect(res.text).toMatch(
      /^trackcomments_http_request_duration_seconds_count\{[^}]*route="\/api\/tracks\/:trackId\/comments"[^}]*\} [1-9]/m,
    );
  });

  test('/readyz answers 503 once the server is draining', async () => {
    const extra = await env().startExtraServer();
    expect((await request(extra.handler).get('/readyz')).status).toBe(200);
    const stopped = extra.shutdown('test');
    const res = await request(extra.handler).get('/readyz');
    await stopped;
    expect(res.status).toBe(503);
    expect(res.body.checks.accepting).toBe(false);
  });
});

describe('CORS', () => {
  test('a preflight from a listed origin is allowed with credentials', async () => {
    const res = await request(env().app)
      .options(listPath)
      .set('Origin', ALLOWED_ORIGIN)
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'authorization,content-type');
    expect(res.status).toBeLessThan(300);
    expect(res.headers['access-control-allow-origin']).toBe(ALLOWED_ORIGIN);
    expect(res.headers['access-control-allow-credentials']).toBe('true');
    expect(res.headers['access-control-allow-methods']).toMatch(/POST/);
    expect(res.headers['access-control-allow-headers']).toMatch(/authorization/i);
  });

  test('a GET from a listed origin (cookie credentials) gets the origin echoed and credentials allowed', async () => {
    for (const origin of [ALLOWED_ORIGIN, 'https://b.example']) {
      const res = await request(env().app)
        .get(listPath)
        .set('Origin', origin)
        .set('Cookie', `access_token=${env().tokens.bob}`);
      expect(res.status).toBe(200);
      expect(res.headers['access-control-allow-origin']).toBe(origin);
      expect(res.headers['access-control-allow-credentials']).toBe('true');
      expect(res.headers['vary']).toMatch(/origin/i);
    }
  });

  test.each(['https://evil.example', 'https://a.example.evil.example', 'http://a.example', 'null'])(
    'origin %s gets no Access-Control-Allow-Origin',
    async (origin) => {
      const get = await request(env().app).get(listPath).set('Origin', origin).set(env().as('bob'));
      expect(get.headers['access-control-allow-origin']).toBeUndefined();
      expect(get.headers['access-control-allow-credentials']).toBeUndefined();
      const preflight = await request(env().app)
        .options(listPath)
        .set('Origin', origin)
        .set('Access-Control-Request-Method', 'POST');
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
      expect(preflight.headers['access-control-allow-credentials']).toBeUndefined();
    },
  );

  test('with CORS_ORIGINS unset no origin gets CORS headers', async () => {
    const get = await request(plain.handler)
      .get(listPath)
      .set('Origin', ALLOWED_ORIGIN)
      .set(env().as('bob'));
    expect(get.status).toBe(200);
    expect(get.headers['access-control-allow-origin']).toBeUndefined();
    expect(get.headers['access-control-allow-credentials']).toBeUndefined();
    const preflight = await request(plain.handler)
      .options(listPath)
      .set('Origin', ALLOWED_ORIGIN)
      .set('Access-Control-Request-Method', 'POST');
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('security headers (helmet)', () => {
  test.each([
    ['/healthz', {}],
    [listPath, { Authorization: 'Bearer x' }],
  ])(
    '%s carries nosniff, a CSP and frame protection, and no X-Powered-By',
    async (path, headers) => {
      const res = await request(env().app).get(path).set(headers);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['content-security-policy']).toMatch(/default-src 'self'/);
      expect(res.headers['x-frame-options']).toBeDefined();
      expect(res.headers['x-powered-by']).toBeUndefined();
    },
  );
});

describe('logs', () => {
  test('never contain a user token, the access_token cookie, another cookie or the admin token', async () => {
    const token = env().tokens.dan;
    const signature = token.split('.')[2]!;
    const otherCookie = 'session-cookie-value-5f1e2d3c';
    const before = logs.text().length;

    await request(env().app).get(listPath).set('Authorization', `Bearer ${token}`).expect(200);
    await request(env().app)
      .post(listPath)
      .set('Authorization', `Bearer ${token}`)
      .send({ content: 'logged request' })
      .expect(201);
    await request(env().app)
      .get(listPath)
      .set('Cookie', `access_token=${token}; sid=${otherCookie}`)
      .expect(200);
    expectError(await request(env().app).get(`${listPath}?access_token=${token}`), 401);
    expectError(await request(env().app).get(`${listPath}?token=${token}&x=1`), 401);
    // A rejected token is logged no more than an accepted one.
    expectError(
      await request(env().app).get(listPath).set('Authorization', `Bearer ${token}x`),
      401,
    );
    await request(env().app)
      .put(`/api/admin/users/${USERS.dan.id}`)
      .set(adminAuth)
      .send({ username: USERS.dan.username, is_creator: false, is_team: false })
      .expect(200);
    const refused = await request(env().app)
      .put(`/api/admin/users/${USERS.dan.id}`)
      .set('Authorization', `Bearer ${TEST_ADMIN_TOKEN}-wrong`)
      .send({ username: USERS.dan.username, is_creator: false, is_team: false });
    expect([401, 403]).toContain(refused.status);

    const text = logs.text().slice(before);
    // The requests were logged (so the absence below means something), with query tokens redacted.
    expect(text).toContain('"statusCode":201');
    expect(text).toMatch(/access_token=\[REDACTED\]/);
    expect(text).toMatch(/[?&]token=\[REDACTED\]/);
    expect(text).toContain('/api/admin/users/');

    expect(text).not.toContain(signature);
    expect(text).not.toContain(token);
    expect(text).not.toContain(otherCookie);
    expect(text).not.toContain(TEST_ADMIN_TOKEN);
    expect(text.toLowerCase()).not.toContain('authorization');
    expect(text.toLowerCase()).not.toContain('"cookie"');
  });
});
