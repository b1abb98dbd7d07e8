/**
 * Contract section 7 on a real server process and through the real nginx config: cross-site
 * writes are refused and change nothing, same-origin and non-browser writes go through, and
 * only the exact spelling of a route is served.
 */
import { Client } from 'pg';
import { useCluster } from './support/cluster';
import { httpRequest } from '../harness/http';
import { adminHeaders } from '../harness/replica';
import { openSse } from './support/sse-client';

const TRUSTED = 'https://app.example';
const EVIL = 'https://evil.example';

const c = useCluster({
  replicas: 1,
  env: { CORS_ORIGINS: TRUSTED },
  nginx: { streamsPerClient: 100, writesPerSecond: 1000, writeBurst: 1000 },
});

let pg: Client;
beforeAll(async () => {
  pg = new Client({ connectionString: c().db.url });
  pg.on('error', () => undefined);
  await pg.connect();
}, 240000);
afterAll(async () => {
  await pg?.end();
});

/** Everything a refused request must leave as it was. */
async function state(): Promise<Record<string, unknown>> {
  const { rows } = await pg.query(
    `SELECT (SELECT count(*) FROM comments) AS comments,
            (SELECT string_agg(id || ':' || content, ',' ORDER BY id) FROM comments) AS contents,
            (SELECT count(*) FROM comment_mentions) AS mentions,
            (SELECT count(*) FROM stream_events) AS events,
            (SELECT count(*) FROM tracks) AS tracks,
            (SELECT count(*) FROM users) AS users`,
  );
  return rows[0] as Record<string, unknown>;
}

const cookieOf = (token: string) => ({ Cookie: `access_token=${token}` });
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };
const JSON_TYPE = { 'Content-Type': 'application/json' };
/** The two ways in: the replica itself, and nginx in front of it. */
const VIA = ['replica', 'nginx'] as const;
const baseOf = (via: (typeof VIA)[number]) =>
  via === 'replica' ? c().replicas[0]!.url : c().nginx!.url;
/** What a browser on the page at `base` sends as Origin. */
const ownOrigin = (base: string) => new URL(base).origin;

type Send = [
  what: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
];

/** One request; a stream opened by mistake fails it within 10 s (before its first heartbeat). */
const send = (base: string, [, method, path, headers, body]: Send) =>
  httpRequest(`${base}${path}`, method, { headers, body, timeoutMs: 10000 });

/** Sends each request in turn; asserts every answer is `status` with the error body `code`. */
async function expectErrors(base: string, reqs: Send[], status: number, code: string) {
  const answers: [string, number, string | undefined, unknown][] = [];
  for (const req of reqs) {
    const res = await send(base, req);
    answers.push([req[0], res.status, res.headers['content-type'], res.json]);
  }
  const error = { error: { code, message: expect.any(String) } };
  const json = expect.stringMatching(/^application\/json/);
  expect(answers).toEqual(reqs.map((req) => [req[0], status, json, error]));
}

describe.each(VIA)('via %s', (via) => {
  test('cross-site writes are 403 cross_origin_request and change nothing', async () => {
    const base = baseOf(via);
    const trackId = await c().newTrack();
    const { alice, bob, carol } = c().tokens;
    const target = await c().postComment(base, 'alice', trackId, 'the original');
    const stream = await openSse(`${base}/api/tracks/${trackId}/events`, { token: carol });
    try {
      await stream.waitForEvent((e) => e.event === 'connected');
      const before = await state();
      const comments = `/api/tracks/${trackId}/comments`;
      const refused: Send[] = [
        // A form post carrying the session cookie, as another site's page sends it.
        [
          'form POST',
          'POST',
          comments,
          { ...cookieOf(bob), ...FORM, Origin: EVIL },
          'content=hi+%40alice&timestamp=1',
        ],
        [
          'JSON POST (the lean path)',
          'POST',
          comments,
          { ...cookieOf(bob), ...JSON_TYPE, 'Sec-Fetch-Site': 'cross-site', Origin: EVIL },
          '{"content":"hi @alice"}',
        ],
        [
          'opaque origin',
          'POST',
          comments,
          { ...cookieOf(bob), ...JSON_TYPE, Origin: 'null' },
          '{"content":"x"}',
        ],
        [
          'same-site',
          'POST',
          comments,
          { ...cookieOf(bob), ...FORM, 'Sec-Fetch-Site': 'same-site' },
          'content=x',
        ],
        [
          'own host, other port',
          'POST',
          comments,
          { ...cookieOf(bob), ...FORM, Origin: 'http://127.0.0.1:1' },
          'content=x',
        ],
        [
          'typing',
          'POST',
          `/api/tracks/${trackId}/typing`,
          { ...cookieOf(bob), ...FORM, Origin: EVIL },
          'is_typing=true',
        ],
        [
          'PATCH',
          'PATCH',
          `/api/comments/${target.id}`,
          { ...cookieOf(alice), ...FORM, 'Sec-Fetch-Site': 'cross-site', Origin: EVIL },
          'content=defaced',
        ],
        ['DELETE', 'DELETE', `/api/comments/${target.id}`, { ...cookieOf(alice), Origin: EVIL }],
        [
          'admin PUT',
          'PUT',
          `/api/admin/tracks/planted-${trackId}`,
          { ...adminHeaders, ...JSON_TYPE, Origin: EVIL },
          JSON.stringify({ title: 'planted', album_id: 1 }),
        ],
      ];
      await expectErrors(base, refused, 403, 'cross_origin_request');
      expect(await state()).toEqual(before);

      // The refused typing reached nobody: the first typing event carol sees is the allowed one.
      const typing: Send = [
        'typing',
        'POST',
        `/api/tracks/${trackId}/typing`,
        { ...cookieOf(bob), ...JSON_TYPE, Origin: ownOrigin(base) },
        '{"is_typing":false}',
      ];
      expect((await send(base, typing)).status).toBe(202);
      const seen = await stream.waitForEvent((e) => e.event === 'user_typing');
      expect(seen.data).toMatchObject({ user_id: 3, is_typing: false });
      // Nor did the refused posts: the next comment carol sees is one posted afterwards.
      const after = await c().postComment(base, 'bob', trackId, 'posted afterwards');
      const idOf = (e: { data: unknown }) => (e.data as { comment?: { id: number } }).comment?.id;
      const next = await stream.waitForEvent(
        (e) => e.event === 'new_comment' && idOf(e) !== target.id,
      );
      expect(idOf(next)).toBe(after.id);
    } finally {
      stream.close();
    }
  }, 60000);

  test('same-origin, trusted-origin and non-browser writes go through', async () => {
    const base = baseOf(via);
    const trackId = await c().newTrack();
    const { alice, bob } = c().tokens;
    const comments = `/api/tracks/${trackId}/comments`;
    // Without Sec-Fetch-Site, Origin is compared with the Host the client used: through
    // nginx that is nginx's host and port, which nginx must pass on.
    const own = ownOrigin(base);
    const allowed: [Send, number][] = [
      [
        [
          'own Origin, form',
          'POST',
          comments,
          { ...cookieOf(bob), ...FORM, Origin: own },
          'content=own+form',
        ],
        201,
      ],
      [
        [
          'own Origin, JSON',
          'POST',
          comments,
          { ...cookieOf(bob), ...JSON_TYPE, Origin: own },
          '{"content":"own json"}',
        ],
        201,
      ],
      [
        [
          'same-origin',
          'POST',
          comments,
          { ...cookieOf(bob), ...JSON_TYPE, 'Sec-Fetch-Site': 'same-origin', Origin: own },
          '{"content":"so"}',
        ],
        201,
      ],
      [
        [
          'user-initiated',
          'POST',
          comments,
          { ...cookieOf(bob), ...FORM, 'Sec-Fetch-Site': 'none' },
          'content=typed',
        ],
        201,
      ],
      [
        [
          'no browser headers',
          'POST',
          comments,
          { Authorization: `Bearer ${bob}`, ...JSON_TYPE },
          '{"content":"curl"}',
        ],
        201,
      ],
      [
        [
          'trusted origin, cross-site',
          'POST',
          comments,
          { ...cookieOf(bob), ...JSON_TYPE, 'Sec-Fetch-Site': 'cross-site', Origin: TRUSTED },
          '{"content":"app"}',
        ],
        201,
      ],
      [
        [
          'admin PUT, no browser headers',
          'PUT',
          `/api/admin/tracks/ok-${trackId}`,
          { ...adminHeaders, ...JSON_TYPE },
          JSON.stringify({ title: 'ok', album_id: 1 }),
        ],
        201,
      ],
    ];
    for (const [req, status] of allowed) {
      const res = await send(base, req);
      expect([req[0], res.status, res.text]).toEqual([req[0], status, expect.any(String)]);
    }
    const mine = await c().postComment(base, 'alice', trackId, 'to edit');
    const edit: Send = [
      'PATCH',
      'PATCH',
      `/api/comments/${mine.id}`,
      { ...cookieOf(alice), ...JSON_TYPE, Origin: TRUSTED, 'Sec-Fetch-Site': 'cross-site' },
      '{"content":"edited"}',
    ];
    expect((await send(base, edit)).status).toBe(200);
    const del: Send = [
      'DELETE',
      'DELETE',
      `/api/comments/${mine.id}`,
      { ...cookieOf(alice), Origin: own },
    ];
    expect((await send(base, del)).status).toBe(204);
    const list = await c().listComments(base, trackId);
    expect(list.map((x) => x.content).sort()).toEqual([
      'app',
      'curl',
      'own form',
      'own json',
      'so',
      'typed',
    ]);
  }, 60000);

  test('other spellings of a route are 404 and change nothing', async () => {
    const base = baseOf(via);
    const trackId = await c().newTrack();
    const target = await c().postComment(base, 'alice', trackId, 'stays');
    const before = await state();
    const bearer = { Authorization: `Bearer ${c().tokens.alice}` };
    const write = { ...bearer, ...JSON_TYPE };
    const body = '{"content":"x"}';
    const spellings: Send[] = [
      ['upper-case /API', 'POST', `/API/tracks/${trackId}/comments`, write, body],
      ['upper-case Tracks', 'POST', `/api/Tracks/${trackId}/comments`, write, body],
      ['trailing slash', 'POST', `/api/tracks/${trackId}/comments/`, write, body],
      [
        'trailing slash, form',
        'POST',
        `/api/tracks/${trackId}/comments/`,
        { ...bearer, ...FORM },
        'content=x',
      ],
      [
        'typing with a slash',
        'POST',
        `/api/tracks/${trackId}/typing/`,
        write,
        '{"is_typing":true}',
      ],
      ['PATCH Comments', 'PATCH', `/api/Comments/${target.id}`, write, body],
      ['DELETE with a slash', 'DELETE', `/api/comments/${target.id}/`, bearer],
      [
        'admin Tracks',
        'PUT',
        `/api/admin/Tracks/t-${trackId}`,
        { ...adminHeaders, ...JSON_TYPE },
        '{"title":"t","album_id":1}',
      ],
      [
        'admin with a slash',
        'PUT',
        `/api/admin/tracks/t-${trackId}/`,
        { ...adminHeaders, ...JSON_TYPE },
        '{"title":"t","album_id":1}',
      ],
      ['stream with a slash', 'GET', '/api/me/events/', bearer],
      ['track stream with a slash', 'GET', `/api/tracks/${trackId}/events/`, bearer],
      ['upper-case stream', 'GET', '/API/me/events', bearer],
      ['list with a slash', 'GET', `/api/tracks/${trackId}/comments/`, bearer],
      ['/METRICS', 'GET', '/METRICS', {}],
      ['/Metrics', 'GET', '/Metrics', {}],
      ['/metrics/', 'GET', '/metrics/', {}],
      ['/Healthz', 'GET', '/Healthz', {}],
    ];
    await expectErrors(base, spellings, 404, 'not_found');
    expect(await state()).toEqual(before);
    // The exact spellings still work.
    expect(
      (await send(base, ['list', 'GET', `/api/tracks/${trackId}/comments`, bearer])).status,
    ).toBe(200);
    expect((await send(base, ['healthz', 'GET', '/healthz', {}])).status).toBe(200);
  }, 60000);
});

test('/metrics is served by the replica itself, not through nginx', async () => {
  const direct = await httpRequest(`${c().replicas[0]!.url}/metrics`, 'GET');
  expect(direct.status).toBe(200);
  expect(direct.text).toMatch(/^trackcomments_open_streams/m);
  await expectErrors(
    c().nginx!.url,
    [['/metrics via nginx', 'GET', '/metrics', {}]],
    404,
    'not_found',
  );
});
