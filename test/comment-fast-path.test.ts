/**
 * The lean comment write (src/http/comment-fast-path.ts) answers exactly as the express app
 * does. The app answers the same POST when the URL carries a query string (the lean path
 * takes only the exact path), so every case is sent both ways and the answers compared:
 * status, body, headers. Requests the lean path declines still reach the app, and a client
 * that goes away mid-body leaves nothing behind.
 */
import http from 'node:http';
import request from 'supertest';
import {
  ALBUM_ID,
  adminAuth,
  TRACK_TIMED,
  captureLogger,
  expectError,
  rowCounts,
  useRestEnv,
} from './support/rest-env';

const ORIGIN = 'https://app.example';
const logs = captureLogger('info');
const env = useRestEnv({ env: { CORS_ORIGINS: ORIGIN, LOG_LEVEL: 'info' }, logger: logs.logger });

const leanPath = (track: string) => `/api/tracks/${track}/comments`;
/** The same endpoint with a query string: the lean path declines it, so the app answers. */
const appPath = (track: string) => `${leanPath(track)}?via=app`;

/** Sends raw body text with the given content type; resolves with the parsed answer. */
function post(path: string, body: string, headers: Record<string, string> = {}) {
  return request(env().app)
    .post(path)
    .set({ ...env().as('bob'), Origin: ORIGIN, 'Content-Type': 'application/json', ...headers })
    .send(body);
}

/** Headers whose values may differ between two answers to the same request. */
const VARYING = new Set(['date', 'x-request-id', 'location', 'content-length', 'etag']);

function sameAnswer(lean: request.Response, app: request.Response) {
  expect(lean.status).toBe(app.status);
  if (lean.status === 201) {
    const strip = ({ id: _id, created_at: _c, ...rest }: Record<string, unknown>) => rest;
    expect(strip(lean.body.comment)).toEqual(strip(app.body.comment));
    expect(lean.headers.location).toBe(`/api/comments/${lean.body.comment.id}`);
  } else {
    expect(lean.body).toEqual(app.body);
  }
  const names = (r: request.Response) =>
    Object.keys(r.headers)
      .filter((h) => !VARYING.has(h))
      .sort();
  expect(names(lean)).toEqual(names(app));
  for (const name of names(app)) {
    if (name !== 'connection' && name !== 'keep-alive')
      expect([name, lean.headers[name]]).toEqual([name, app.headers[name]]);
  }
  expect(lean.headers['x-request-id']).toMatch(/\S/);
}

let parentHere: number;
let parentElsewhere: number;

/** 21 users made at setup: one more than a comment may name. */
const CROWD = Array.from({ length: 21 }, (_, i) => `crowd_${i}`);

beforeAll(async () => {
  for (const [i, username] of CROWD.entries()) {
    const res = await request(env().app)
      .put(`/api/admin/users/${100 + i}`)
      .set(adminAuth)
      .send({ username, is_creator: false, is_team: false });
    expect(res.status).toBe(201);
  }
  parentHere = (await env().postComment('bob', TRACK_TIMED, { content: 'a parent' })).id;
  const other = await env().newTrack();
  parentElsewhere = (await env().postComment('bob', other, { content: 'on another track' })).id;
});

const CASES: [string, () => string, Record<string, string>?][] = [
  ['a valid comment', () => JSON.stringify({ content: 'hello @cara', timestamp: 12.5 })],
  ['a reply', () => JSON.stringify({ content: 'reply', parent_id: parentHere })],
  ['no parent, said explicitly', () => JSON.stringify({ content: 'top', parent_id: null })],
  [
    'charset=UTF-8',
    () => JSON.stringify({ content: 'x' }),
    { 'Content-Type': 'application/json; charset=UTF-8' },
  ],
  ['a leading byte-order mark', () => '\ufeff' + JSON.stringify({ content: 'bom' })],
  ['broken JSON', () => '{"content": "x"'],
  ['a JSON string, not an object', () => '"just text"'],
  ['a JSON array', () => '[1,2]'],
  ['whitespace only', () => '   '],
  ['an unknown field', () => JSON.stringify({ content: 'x', colour: 'red' })],
  ['empty content', () => JSON.stringify({ content: '   ' })],
  ['content too long', () => JSON.stringify({ content: 'y'.repeat(2001) })],
  ['content with NUL', () => JSON.stringify({ content: 'a\u0000b' })],
  ['a timestamp past the duration', () => JSON.stringify({ content: 'x', timestamp: 61 })],
  ['a negative timestamp', () => JSON.stringify({ content: 'x', timestamp: -1 })],
  ['a parent on another track', () => JSON.stringify({ content: 'x', parent_id: parentElsewhere })],
  ['a parent that does not exist', () => JSON.stringify({ content: 'x', parent_id: 2147483647 })],
  ['a fractional parent id', () => JSON.stringify({ content: 'x', parent_id: 1.5 })],
  // Contract section 7: text must be well-formed, fan-out is bounded.
  ['content with a lone surrogate', () => '{"content":"x \\ud800"}'],
  ['content with a lone low surrogate', () => '{"content":"\\udc00 y"}'],
  ['content with an escaped NUL', () => '{"content":"a\\u0000"}'],
  [
    'content naming 21 users',
    () => JSON.stringify({ content: CROWD.map((u) => `@${u}`).join(' ') }),
  ],
];

test.each(CASES)('%s: the lean path answers as the app does', async (_name, body, headers = {}) => {
  const lean = await post(leanPath(TRACK_TIMED), body(), headers);
  const app = await post(appPath(TRACK_TIMED), body(), headers);
  sameAnswer(lean, app);
  // The app's answers carry an ETag (express adds one to every body); the lean path's don't:
  // this is how the test knows each request took the path it names.
  expect(app.headers.etag).toBeDefined();
  expect(lean.headers.etag).toBeUndefined();
});

/** Contract section 7: whether a write is cross-site is one rule, in the lean path and the app. */
const CROSS_ORIGIN: [string, Record<string, string>, number][] = [
  ['cross-site', { 'Sec-Fetch-Site': 'cross-site', Origin: 'https://evil.example' }, 403],
  [
    'same-site (a sibling origin)',
    { 'Sec-Fetch-Site': 'same-site', Origin: 'http://a.svc.example' },
    403,
  ],
  ['cross-site without Origin', { 'Sec-Fetch-Site': 'cross-site', Origin: '' }, 403],
  ['another Origin, no Sec-Fetch-Site', { Origin: 'https://evil.example' }, 403],
  ['Origin "null"', { Origin: 'null' }, 403],
  ['own host name, other port', { Host: 'svc.example', Origin: 'http://svc.example:8080' }, 403],
  ['a trusted origin, cross-site', { 'Sec-Fetch-Site': 'cross-site', Origin: ORIGIN }, 201],
  ['own host', { Host: 'svc.example:8080', Origin: 'http://svc.example:8080' }, 201],
  ['same-origin', { 'Sec-Fetch-Site': 'same-origin', Origin: 'http://svc.example' }, 201],
  ['user-initiated', { 'Sec-Fetch-Site': 'none', Origin: '' }, 201],
];

test.each(CROSS_ORIGIN)(
  'a write marked %s: the lean path answers as the app does',
  async (_name, headers, status) => {
    const before = await rowCounts(env().pg);
    const body = JSON.stringify({ content: 'from somewhere' });
    const lean = await post(leanPath(TRACK_TIMED), body, headers);
    const app = await post(appPath(TRACK_TIMED), body, headers);
    sameAnswer(lean, app);
    expect(lean.status).toBe(status);
    if (status === 403) {
      expectError(lean, 403, 'cross_origin_request');
      // Refused before the body is read, and answered by the app: nothing was written.
      expect(lean.headers.etag).toBeDefined();
      expect(await rowCounts(env().pg)).toEqual(before);
    } else {
      expect(lean.headers.etag).toBeUndefined();
    }
  },
);

test('a failed write through the lean path changes nothing', async () => {
  const before = await rowCounts(env().pg);
  expectError(await post(leanPath(TRACK_TIMED), '{"content":'), 400, 'invalid_json');
  expectError(
    await post(leanPath(TRACK_TIMED), JSON.stringify({ content: 'x', parent_id: 2147483647 })),
    400,
    'invalid_parent',
  );
  expect(await rowCounts(env().pg)).toEqual(before);
});

test('a lean write is logged like the app logs it, and counted in the request metric', async () => {
  const from = logs.text().length;
  const res = await post(leanPath(TRACK_TIMED), JSON.stringify({ content: 'logged' }), {
    'X-Request-Id': 'lean-trace-1',
  });
  expect(res.status).toBe(201);
  expect(res.headers['x-request-id']).toBe('lean-trace-1');
  const line = logs
    .text()
    .slice(from)
    .split('\n')
    .filter(Boolean)
    .map(
      (l) => JSON.parse(l) as { req?: { id?: string }; res?: { statusCode?: number }; msg: string },
    )
    .find((l) => l.req?.id === 'lean-trace-1');
  expect(line).toMatchObject({
    msg: 'request completed',
    req: { method: 'POST', url: leanPath(TRACK_TIMED), ip: '127.0.0.1' },
    res: { statusCode: 201 },
  });
  const metrics = await request(env().app).get('/metrics');
  expect(metrics.text).toMatch(
    /^trackcomments_http_request_duration_seconds_count\{[^}]*method="POST",route="\/api\/tracks\/:trackId\/comments",status="201"\} [1-9]/m,
  );
});

describe('requests the lean path declines reach the app', () => {
  test('a form body', async () => {
    const res = await request(env().app)
      .post(leanPath(TRACK_TIMED))
      .set(env().as('bob'))
      .type('form')
      .send({ content: 'from a form', timestamp: '3' });
    expect(res.status).toBe(201);
    expect(res.body.comment.timestamp).toBe(3);
  });

  test('a chunked body, another JSON type, and one over the size limit', async () => {
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${env().url}${leanPath(TRACK_TIMED)}`, {
        method: 'POST',
        headers: { ...env().as('bob'), 'Content-Type': 'application/json' },
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.write('{"content":');
      req.end('"sent in chunks"}');
    });
    expect(chunked.status).toBe(201);
    expect(JSON.parse(chunked.body).comment.content).toBe('sent in chunks');

    const vendor = await post(leanPath(TRACK_TIMED), JSON.stringify({ content: 'vendor' }), {
      'Content-Type': 'application/vnd.trackcomments+json',
    });
    expect(vendor.status).toBe(201);

    const big = await post(leanPath(TRACK_TIMED), JSON.stringify({ content: 'z'.repeat(17000) }));
    expectError(big, 413, 'payload_too_large');
  });

  test('refusals before the body: no or a bad token, an unknown track', async () => {
    const body = JSON.stringify({ content: 'x' });
    expectError(await request(env().app).post(leanPath(TRACK_TIMED)).type('json').send(body), 401);
    expectError(await post(leanPath('no-such-track'), body), 404, 'not_found');
    // The app parses the body before it authenticates: so does the combined path.
    expectError(
      await request(env().app).post(leanPath(TRACK_TIMED)).type('json').send('{oops'),
      400,
      'invalid_json',
    );
  });
});

test('a client that goes away mid-body leaves no comment, and the server answers the next one', async () => {
  const track = await env().newTrack(null, ALBUM_ID);
  const count = async () =>
    Number(
      (await env().pg.query('SELECT count(*) AS n FROM comments WHERE track_id = $1', [track]))
        .rows[0].n,
    );
  await new Promise<void>((resolve, reject) => {
    const req = http.request(`${env().url}${leanPath(track)}`, {
      method: 'POST',
      headers: {
        ...env().as('bob'),
        'Content-Type': 'application/json',
        'Content-Length': '200',
      },
    });
    req.on('error', () => resolve());
    req.on('response', () => reject(new Error('a half-sent request was answered')));
    req.write('{"content":"half', () => setImmediate(() => req.destroy()));
    req.on('close', () => resolve());
  });
  const next = await post(leanPath(track), JSON.stringify({ content: 'whole' }));
  expect(next.status).toBe(201);
  expect(await count()).toBe(1);
});
