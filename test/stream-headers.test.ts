/**
 * A stream opened through the lean entry (src/http/stream-fast-path.ts) carries the same
 * response headers as the app's other answers: helmet's security headers, CORS for an
 * allowed origin (with credentials), X-Request-Id — and the contract's SSE headers.
 */
import http from 'node:http';
import { loadConfig } from '../src/config/config';
import { startServer, type RunningServer } from '../src/server';
import { createTestDatabase } from '../harness/test-db';
import { TEST_ADMIN_TOKEN, TEST_AUTH_SECRET, adminHeaders, userToken } from '../harness/replica';
import { waitFor } from '../harness/wait';

const ORIGIN = 'https://app.example';
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let running: RunningServer;

beforeAll(async () => {
  db = await createTestDatabase();
  running = await startServer(
    loadConfig({
      NODE_ENV: 'test',
      DATABASE_URL: db.url,
      AUTH_SECRET: TEST_AUTH_SECRET,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
      CORS_ORIGINS: ORIGIN,
    }),
    { quiet: true },
  );
  const put = async (path: string, body: unknown) => {
    const res = await fetch(`${running.url}${path}`, {
      method: 'PUT',
      headers: { ...adminHeaders, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect([200, 201]).toContain(res.status);
  };
  await put('/api/admin/users/1', { username: 'owner', is_creator: true });
  await put('/api/admin/users/2', { username: 'listener' });
  await put('/api/admin/albums/1', { title: 'Album', created_by_id: 1 });
  await put('/api/admin/tracks/t1', { title: 'Track', album_id: 1 });
});

afterAll(async () => {
  await running?.shutdown();
  await db?.drop();
});

/** Opens a request and resolves with the status and headers as soon as they arrive. */
function headersOf(path: string, headers: Record<string, string>, base = running.url) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    const req = http.get(`${base}${path}`, { headers }, (res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
      res.destroy();
    });
    req.on('error', reject);
  });
}

const SHARED = [
  'x-content-type-options',
  'x-frame-options',
  'content-security-policy',
  'strict-transport-security',
  'referrer-policy',
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'vary',
];

test('a stream and a REST answer carry the same security and CORS headers', async () => {
  const auth = { Authorization: `Bearer ${await userToken(2)}`, Origin: ORIGIN };
  const stream = await headersOf('/api/tracks/t1/events', auth);
  const rest = await headersOf('/api/tracks/t1/comments', auth);
  expect(stream.status).toBe(200);
  expect(rest.status).toBe(200);
  expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);
  expect(stream.headers['cache-control']).toBe('no-cache');
  expect(stream.headers['x-accel-buffering']).toBe('no');
  expect(stream.headers['content-encoding']).toBeUndefined();
  expect(stream.headers['access-control-allow-origin']).toBe(ORIGIN);
  expect(stream.headers['access-control-allow-credentials']).toBe('true');
  for (const name of SHARED)
    expect([name, stream.headers[name]]).toEqual([name, rest.headers[name]]);
  expect(stream.headers['x-request-id']).toMatch(/\S/);
  const me = await headersOf('/api/me/events', { ...auth, 'X-Request-Id': 'trace-123' });
  expect(me.status).toBe(200);
  expect(me.headers['x-request-id']).toBe('trace-123');
  expect(me.headers['x-content-type-options']).toBe('nosniff');
});

test('another origin gets no CORS headers on a stream', async () => {
  const stream = await headersOf('/api/tracks/t1/events', {
    Authorization: `Bearer ${await userToken(2)}`,
    Origin: 'https://evil.example',
  });
  expect(stream.status).toBe(200);
  expect(stream.headers['access-control-allow-origin']).toBeUndefined();
});

test('refusals on the stream paths keep the app error shape', async () => {
  const none = await headersOf('/api/tracks/t1/events', {});
  expect(none.status).toBe(401);
  expect(none.headers['content-type']).toMatch(/application\/json/);
  const unknown = await headersOf('/api/tracks/nope/events', {
    Authorization: `Bearer ${await userToken(2)}`,
  });
  expect(unknown.status).toBe(404);
});

test('HEAD on a stream path answers the stream headers with no body and ends', async () => {
  const res = await fetch(`${running.url}/api/tracks/t1/events`, {
    method: 'HEAD',
    headers: { Authorization: `Bearer ${await userToken(2)}` },
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  // The answer is over: a HEAD must not turn into an open stream.
  expect(await res.text()).toBe('');
  // No stream stays open behind it (earlier tests' streams may still be closing: wait).
  const openTrackStreams = async () =>
    /^trackcomments_open_streams\{kind="track"\} (\d+)$/m.exec(
      await (await fetch(`${running.url}/metrics`)).text(),
    )?.[1];
  await waitFor(async () => (await openTrackStreams()) === '0', {
    timeoutMs: 5000,
    what: 'no open track stream',
  });
});

/** Headers whose values may differ between two answers to the same request. */
const VARYING = new Set(['date', 'x-request-id', 'connection', 'keep-alive']);

test('a stream opened by the lean path answers exactly as the express route does', async () => {
  // The same express app the server hands declined requests to, served alone (no lean paths).
  const appOnly = http.createServer(running.expressWithoutLeanPaths);
  await new Promise<void>((resolve) => appOnly.listen(0, '127.0.0.1', resolve));
  const { port } = appOnly.address() as { port: number };
  try {
    const auth = { Authorization: `Bearer ${await userToken(2)}` };
    const cases: [string, Record<string, string>][] = [
      ['/api/tracks/t1/events', { ...auth, Origin: ORIGIN }],
      ['/api/tracks/t1/events', { ...auth, Origin: 'https://evil.example' }],
      ['/api/tracks/t1/events?last_event_id=0', auth],
      ['/api/me/events', { ...auth, 'X-Request-Id': 'trace-9', Origin: ORIGIN }],
      ['/api/me/events', { ...auth, 'Last-Event-ID': 'nonsense' }],
    ];
    for (const [path, headers] of cases) {
      const lean = await headersOf(path, headers);
      const app = await headersOf(path, headers, `http://127.0.0.1:${port}`);
      expect([path, lean.status]).toEqual([path, app.status]);
      const names = (h: http.IncomingHttpHeaders) =>
        Object.keys(h)
          .filter((n) => !VARYING.has(n))
          .sort();
      expect([path, names(lean.headers)]).toEqual([path, names(app.headers)]);
      for (const name of names(app.headers))
        expect([path, name, lean.headers[name]]).toEqual([path, name, app.headers[name]]);
      expect(lean.headers['x-request-id']).toMatch(/\S/);
      if (headers['X-Request-Id']) expect(lean.headers['x-request-id']).toBe('trace-9');
    }
  } finally {
    appOnly.closeAllConnections();
    await new Promise((resolve) => appOnly.close(resolve));
  }
});
