import { execFile } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import { EventSource } from 'eventsource';
import express from 'express';
import request from 'supertest';
import {
  ApiError,
  createClient,
  type Comment,
  type ConnectionState,
  type Subscription,
} from '../src/client/trackcomments-client';
import { createDemoRouter } from '../src/http/demo-routes';
import { waitForValue } from '../harness/wait';

/** A request as the fake service saw it. */
interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** An open SSE response the test writes events into. */
interface FakeStream {
  request: Seen;
  send(event: string, data: object, id?: number): void;
  end(): void;
  closedByClient: Promise<void>;
}

const TOKEN = 'Bearer test-token';

const comment = (id: number, content = 'hello'): Comment => ({
  id,
  track_id: 't1',
  user: { id: 1, username: 'alice' },
  content,
  timestamp: 12.5,
  parent_id: null,
  mentions: [],
  is_edited: false,
  last_edited_at: null,
  created_at: '2026-11-26T08:00:00.000Z',
});

const errorBody = (code: string, message: string) => JSON.stringify({ error: { code, message } });

let server: http.Server;
let baseUrl: string;
let seen: Seen[] = [];
let streams: FakeStream[] = [];
/** Status codes to answer the next stream requests with, instead of opening a stream. */
let streamFailures: number[] = [];
const subscriptions: Subscription[] = [];

function json(
  res: http.ServerResponse,
  status: number,
  body: string,
  extra: http.OutgoingHttpHeaders = {},
) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...extra }).end(body);
}

function route(req: Seen, res: http.ServerResponse): void {
  const { method, path } = req;
  if (path.endsWith('/events') && method === 'GET') {
    const failure = streamFailures.shift();
    if (failure !== undefined) {
      json(res, failure, errorBody('unavailable', `status ${failure}`));
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
    });
    res.write('retry: 20\n\n');
    res.write(
      `event: connected\ndata: ${JSON.stringify({ type: 'connected', track_id: 't1', message: 'hi', connection_id: `c${streams.length}` })}\n\n`,
    );
    const closedByClient = new Promise<void>((resolve) => res.on('close', () => resolve()));
    streams.push({
      request: req,
      send(event, data, id) {
        res.write(
          `${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`,
        );
      },
      end: () => res.end(),
      closedByClient,
    });
    return;
  }
  if (method === 'GET' && path === '/api/tracks/t1/comments') {
    json(res, 200, JSON.stringify({ comments: [comment(1)], next_cursor: 'next-1' }));
  } else if (method === 'GET' && path === '/api/tracks/proxy-down/comments') {
    res.writeHead(502, 'Bad Gateway', { 'Content-Type': 'text/html' }).end('<h1>502</h1>');
  } else if (method === 'POST' && path === '/api/tracks/t1/comments') {
    const body = JSON.parse(req.body) as { content: string };
    json(res, 201, JSON.stringify({ comment: comment(7, body.content) }));
  } else if (method === 'POST' && path === '/api/tracks/missing/comments') {
    json(res, 404, errorBody('track_not_found', 'no such track'));
  } else if (method === 'PATCH' && path === '/api/comments/7') {
    json(res, 200, JSON.stringify({ comment: { ...comment(7, 'edited'), is_edited: true } }));
  } else if (method === 'PATCH' && path === '/api/comments/8') {
    json(res, 403, errorBody('forbidden', 'only the author may edit'));
  } else if (method === 'DELETE' && path === '/api/comments/7') {
    res.writeHead(204).end();
  } else if (method === 'POST' && path === '/api/tracks/t1/typing') {
    res.writeHead(202).end();
  } else if (method === 'POST' && path === '/api/tracks/busy/typing') {
    json(res, 429, errorBody('rate_limited', 'slow down'), { 'Retry-After': '3' });
  } else {
    json(res, 404, errorBody('not_found', 'no route'));
  }
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const entry: Seen = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(entry);
      route(entry, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterEach(() => {
  // Closing a subscription aborts its request. Idle keep-alive sockets stay open: cutting
  // them here would make the next test's first fetch fail on a reused, dead socket.
  for (const s of subscriptions.splice(0)) s.close();
  seen = [];
  streams = [];
  streamFailures = [];
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function nodeClient() {
  return createClient({ baseUrl, EventSource, fetch, headers: { Authorization: TOKEN } });
}

describe('REST calls', () => {
  it('send the contract method, path, query and JSON body, with the given headers', async () => {
    const client = nodeClient();

    const page = await client.listComments('t1', { limit: 2, cursor: 'abc', order: 'created' });
    expect(page).toEqual({ comments: [comment(1)], next_cursor: 'next-1' });

    const posted = await client.postComment('t1', {
      content: 'at the drop',
      timestamp: 42,
      parent_id: 3,
    });
    expect(posted.content).toBe('at the drop');
    const edited = await client.editComment(7, 'edited');
    expect(edited.is_edited).toBe(true);
    await expect(client.deleteComment(7)).resolves.toBeUndefined();
    await expect(client.setTyping('t1', true)).resolves.toBeUndefined();

    expect(seen.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /api/tracks/t1/comments',
      'POST /api/tracks/t1/comments',
      'PATCH /api/comments/7',
      'DELETE /api/comments/7',
      'POST /api/tracks/t1/typing',
    ]);
    expect(Object.fromEntries(seen[0]!.query)).toEqual({
      limit: '2',
      cursor: 'abc',
      order: 'created',
    });
    expect(JSON.parse(seen[1]!.body)).toEqual({
      content: 'at the drop',
      timestamp: 42,
      parent_id: 3,
    });
    expect(seen[1]!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(seen[2]!.body)).toEqual({ content: 'edited' });
    expect(seen[3]!.body).toBe('');
    expect(JSON.parse(seen[4]!.body)).toEqual({ is_typing: true });
    for (const r of seen) expect(r.headers.authorization).toBe(TOKEN);
  });

  it('leaves out parent_id when there is none and escapes track ids in paths', async () => {
    const client = nodeClient();
    await expect(client.postComment('a/b?c', { content: 'x' })).rejects.toMatchObject({
      status: 404,
      code: 'not_found',
    });
    expect(seen[0]!.path).toBe('/api/tracks/a%2Fb%3Fc/comments');
    expect(JSON.parse(seen[0]!.body)).toEqual({ content: 'x' });
  });

  it('raise ApiError with status, code and message from the contract error body', async () => {
    const client = nodeClient();
    const notFound = await client.postComment('missing', { content: 'x' }).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(ApiError);
    expect(notFound).toMatchObject({
      status: 404,
      code: 'track_not_found',
      message: 'no such track',
    });

    const forbidden = await client.editComment(8, 'x').catch((e: unknown) => e);
    expect(forbidden).toMatchObject({
      status: 403,
      code: 'forbidden',
      message: 'only the author may edit',
    });

    const limited = await client.setTyping('busy', true).catch((e: unknown) => e);
    expect(limited).toMatchObject({ status: 429, code: 'rate_limited', retryAfterSeconds: 3 });

    const proxy = await client.listComments('proxy-down').catch((e: unknown) => e);
    expect(proxy).toMatchObject({ status: 502, code: 'http_502', message: 'Bad Gateway' });
  });

  it('reports an unreachable service as ApiError status 0', async () => {
    const client = createClient({ baseUrl: 'http://127.0.0.1:1', fetch });
    const err = await client.listComments('t1').catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 0, code: 'network_error' });
  });
});

describe('subscriptions', () => {
  it('dispatch named events to their handlers with typed data and ids', async () => {
    const client = nodeClient();
    const got: string[] = [];
    const states: ConnectionState[] = [];
    const sub = client.subscribeTrack('t1', {
      state: (s) => states.push(s),
      connected: (d) => got.push(`connected ${d.connection_id}`),
      new_comment: (d, m) => got.push(`new ${d.comment.id} #${m.id}`),
      comment_edited: (d, m) => got.push(`edited ${d.comment_id} ${d.content} #${m.id}`),
      comment_deleted: (d, m) => got.push(`deleted ${d.comment_id} #${m.id}`),
      user_typing: (d, m) =>
        got.push(`typing ${d.username} ${d.is_typing} ${d.expires_in_ms} #${m.id}`),
    });
    subscriptions.push(sub);
    const stream = await waitForValue(() => streams[0], { what: 'the stream request' });
    expect(stream.request.path).toBe('/api/tracks/t1/events');
    expect(stream.request.headers.authorization).toBe(TOKEN);
    expect(stream.request.headers.accept).toBe('text/event-stream');

    stream.send('new_comment', { type: 'new_comment', track_id: 't1', comment: comment(5) }, 1);
    stream.send('user_typing', {
      type: 'user_typing',
      track_id: 't1',
      user_id: 2,
      username: 'bob',
      is_typing: true,
      expires_in_ms: 5000,
    });
    stream.send(
      'comment_edited',
      {
        type: 'comment_edited',
        track_id: 't1',
        comment_id: 5,
        content: 'v2',
        timestamp: 12.5,
        is_edited: true,
        last_edited_at: '2026-11-26T08:01:00.000Z',
      },
      2,
    );
    stream.send('comment_deleted', { type: 'comment_deleted', track_id: 't1', comment_id: 5 }, 3);
    await waitForValue(() => got.length === 5, { what: 'five events' });

    expect(got).toEqual([
      'connected c0',
      'new 5 #1',
      'typing bob true 5000 #null',
      'edited 5 v2 #2',
      'deleted 5 #3',
    ]);
    expect(sub.lastEventId).toBe('3');
    expect(states).toEqual(['connecting', 'live']);

    sub.close();
    await stream.closedByClient;
    expect(states).toEqual(['connecting', 'live', 'closed']);
    expect(sub.state).toBe('closed');
  });

  it('resumes with Last-Event-ID after a dropped connection and reports the replay as caught up', async () => {
    const client = nodeClient();
    const ids: number[] = [];
    const states: ConnectionState[] = [];
    const caughtUp: number[] = [];
    const sub = client.subscribeTrack(
      't1',
      {
        state: (s) => states.push(s),
        new_comment: (d) => ids.push(d.comment.id),
        caught_up: ({ replayed }) => caughtUp.push(replayed),
      },
      { replayQuietMs: 100 },
    );
    subscriptions.push(sub);
    const first = await waitForValue(() => streams[0], { what: 'the first stream' });
    first.send('new_comment', { type: 'new_comment', track_id: 't1', comment: comment(10) }, 10);
    first.send('new_comment', { type: 'new_comment', track_id: 't1', comment: comment(11) }, 11);
    await waitForValue(() => ids.length === 2, { what: 'two comments' });
    expect(caughtUp).toEqual([]);

    first.end(); // the server (or a proxy) drops the connection
    const second = await waitForValue(() => streams[1], { what: 'the reconnect' });
    expect(second.request.headers['last-event-id']).toBe('11');
    // The replay overlaps what was already delivered; the overlap must not be dispatched again.
    second.send('new_comment', { type: 'new_comment', track_id: 't1', comment: comment(11) }, 11);
    second.send('new_comment', { type: 'new_comment', track_id: 't1', comment: comment(12) }, 12);
    second.send('new_comment', { type: 'new_comment', track_id: 't1', comment: comment(13) }, 13);
    await waitForValue(() => caughtUp.length === 1, { what: 'caught_up' });

    expect(ids).toEqual([10, 11, 12, 13]);
    expect(caughtUp).toEqual([2]);
    expect(states).toEqual(['connecting', 'live', 'reconnecting', 'live']);
    expect(sub.lastEventId).toBe('13');
  });

  it('re-creates the stream with ?last_event_id= when the EventSource gives up on an error status', async () => {
    const client = nodeClient();
    const states: ConnectionState[] = [];
    const errors: (number | undefined)[] = [];
    const ids: number[] = [];
    const sub = client.subscribeTrack(
      't1',
      {
        state: (s) => states.push(s),
        error: (e) => errors.push(e.status),
        new_comment: (d) => ids.push(d.comment.id),
      },
      { minRetryMs: 20 },
    );
    subscriptions.push(sub);
    const first = await waitForValue(() => streams[0], { what: 'the first stream' });
    first.send('new_comment', { type: 'new_comment', track_id: 't1', comment: comment(4) }, 4);
    await waitForValue(() => ids.length === 1, { what: 'one comment' });

    // A proxy answering 502/503 while replicas restart: the EventSource closes for good.
    streamFailures = [502, 503];
    first.end();
    const resumed = await waitForValue(() => streams[1], { what: 'the re-created stream' });
    expect(resumed.request.query.get('last_event_id')).toBe('4');
    const eventRequests = seen.filter((r) => r.path === '/api/tracks/t1/events');
    expect(eventRequests).toHaveLength(4); // first, the automatic retry (502), ours (503), ours
    expect(eventRequests[1]!.headers['last-event-id']).toBe('4');
    expect(errors).toEqual([502, 503]);
    await waitForValue(() => sub.state === 'live', { what: 'live again' });
    expect(states).toEqual(['connecting', 'live', 'reconnecting', 'live']);
  });

  it('stops for good on 401 and reports it', async () => {
    const client = nodeClient();
    const states: ConnectionState[] = [];
    const errors: { status?: number; fatal: boolean }[] = [];
    streamFailures = [401];
    const sub = client.subscribeMe(
      { state: (s) => states.push(s), error: (e) => errors.push(e) },
      { minRetryMs: 10 },
    );
    subscriptions.push(sub);
    await waitForValue(() => sub.state === 'closed', { what: 'closed' });
    expect(errors).toEqual([expect.objectContaining({ status: 401, fatal: true })]);
    expect(states).toEqual(['connecting', 'closed']);
  });

  it('passes reset and mention events through, and forgets the old id after a reset', async () => {
    const client = nodeClient();
    const got: string[] = [];
    const sub = client.subscribeMe(
      {
        reset: (d) => got.push(`reset ${d.reason}`),
        mention: (d, m) =>
          got.push(`mention ${d.comment.id} from ${d.from_user.username} #${m.id}`),
      },
      { lastEventId: '900' },
    );
    subscriptions.push(sub);
    const stream = await waitForValue(() => streams[0], { what: 'the stream' });
    expect(stream.request.path).toBe('/api/me/events');
    expect(stream.request.query.get('last_event_id')).toBe('900');

    stream.send('reset', { type: 'reset', reason: 'history no longer covers 900' });
    // After a reset the ids are not comparable to the old one: 3 < 900 must still arrive.
    stream.send(
      'mention',
      {
        type: 'mention',
        track_id: 't1',
        comment: comment(3),
        from_user: { id: 1, username: 'alice' },
      },
      3,
    );
    await waitForValue(() => got.length === 2, { what: 'two events' });
    expect(got).toEqual(['reset history no longer covers 900', 'mention 3 from alice #3']);
    expect(sub.lastEventId).toBe('3');
  });
});

describe('demo routes, as the client demo.* calls use them', () => {
  const users = [
    { id: 1, username: 'alice', is_creator: true, is_team: false },
    { id: 2, username: 'bob', is_creator: false, is_team: true },
  ];
  const tracks = [
    {
      id: 't1',
      title: 'Intro',
      album_id: 1,
      duration_s: 180,
      album_title: 'First',
      album_creator_id: 1,
    },
  ];
  const tokenLifetimeS = 1800;
  /** A JWT-shaped token whose payload carries `exp`; the router only reads exp from it. */
  const fakeToken = (userId: number) =>
    [
      'e30',
      Buffer.from(
        JSON.stringify({
          sub: String(userId),
          exp: Math.floor(Date.now() / 1000) + tokenLifetimeS,
        }),
      ).toString('base64url'),
      'sig',
    ].join('.');

  /** The user a request's cookie names, as the service's authenticator would find it. */
  function userFromCookie(cookieHeader: string | undefined) {
    const match = /access_token=([^;]+)/.exec(cookieHeader ?? '');
    const payload = match?.[1]?.split('.')[1];
    if (!payload) return undefined;
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sub: string };
    return users.find((u) => u.id === Number(claims.sub));
  }

  /**
   * `auth: 'locals'` stands in for the app's auth middleware in front of the router (the
   * domain user on res.locals.user); `'authenticate'` passes the router an authenticator.
   */
  function demoApp(secureCookies: boolean, auth: 'locals' | 'authenticate' = 'locals') {
    const app = express();
    if (auth === 'locals') {
      app.use((req, res, next) => {
        const u = userFromCookie(req.headers.cookie);
        if (u) {
          res.locals.user = {
            id: u.id,
            username: u.username,
            is_creator: u.is_creator,
            is_team: u.is_team,
          };
        }
        next();
      });
    }
    app.use(
      '/api/demo',
      createDemoRouter({
        issueToken: async (id) => fakeToken(id),
        listUsers: async () => users,
        listTracks: async () => tracks,
        findUser: async (id) => users.find((u) => u.id === id) ?? null,
        secureCookies,
        authenticate:
          auth === 'authenticate'
            ? async (req) => {
                const u = userFromCookie(req.headers.cookie);
                if (!u) throw Object.assign(new Error('no token'), { status: 401 });
                return u;
              }
            : undefined,
      }),
    );
    return app;
  }

  it('sign in by JSON or form sets an HttpOnly, SameSite=Lax access_token cookie for the token lifetime', async () => {
    const app = demoApp(false);
    const res = await request(app).post('/api/demo/session').send({ user_id: 2 }).expect(200);
    expect(res.body).toEqual({ user: users[1] });
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toMatch(/^access_token=[^;]+\.[^;]+\.sig;/);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Lax/);
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).not.toMatch(/Secure/);
    const maxAge = Number(/Max-Age=(\d+)/.exec(cookie)?.[1]);
    expect(maxAge).toBeGreaterThan(tokenLifetimeS - 5);
    expect(maxAge).toBeLessThanOrEqual(tokenLifetimeS);

    const form = await request(demoApp(true))
      .post('/api/demo/session')
      .type('form')
      .send('user_id=1')
      .expect(200);
    expect(form.body).toEqual({ user: users[0] });
    expect(String(form.headers['set-cookie'])).toMatch(/; Secure/);
  });

  it('refuses bad sign-ins with the contract error shape', async () => {
    const app = demoApp(false);
    const cases: [request.Test, number, string][] = [
      [request(app).post('/api/demo/session').send({ user_id: 'two' }), 400, 'invalid_input'],
      [
        request(app).post('/api/demo/session').send({ user_id: 1, admin: true }),
        400,
        'invalid_input',
      ],
      [request(app).post('/api/demo/session').send({}), 400, 'invalid_input'],
      [
        request(app).post('/api/demo/session').type('json').send('{"user_id":'),
        400,
        'invalid_json',
      ],
      [
        request(app).post('/api/demo/session').type('text').send('user_id=1'),
        415,
        'unsupported_media_type',
      ],
      [request(app).post('/api/demo/session').send({ user_id: 99 }), 404, 'user_not_found'],
      [
        request(app)
          .post('/api/demo/session')
          .set('Sec-Fetch-Site', 'cross-site')
          .send({ user_id: 1 }),
        403,
        'cross_site_request',
      ],
      [request(app).get('/api/demo/me'), 401, 'unauthenticated'],
      [request(demoApp(false, 'authenticate')).get('/api/demo/me'), 401, 'unauthenticated'],
    ];
    for (const [req, status, code] of cases) {
      const res = await req;
      expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code });
      expect(typeof res.body.error.message).toBe('string');
      expect(res.headers['set-cookie']).toBeUndefined();
    }
  });

  it.each(['locals', 'authenticate'] as const)(
    'serve users, tracks, me (user via %s) and sign-out to the client',
    async (auth) => {
      const demo = http.createServer(demoApp(false, auth));
      await new Promise<void>((resolve) => demo.listen(0, '127.0.0.1', resolve));
      try {
        const url = `http://127.0.0.1:${(demo.address() as AddressInfo).port}`;
        const anonymous = createClient({ baseUrl: url, fetch });
        expect(await anonymous.demo.users()).toEqual(users);
        expect(await anonymous.demo.tracks()).toEqual(tracks);
        await expect(anonymous.demo.me()).rejects.toMatchObject({
          status: 401,
          code: 'unauthenticated',
        });
        expect(await anonymous.demo.signIn(1)).toEqual(users[0]);

        const signedIn = createClient({
          baseUrl: url,
          fetch,
          headers: { Cookie: `access_token=${fakeToken(2)}` },
        });
        expect(await signedIn.demo.me()).toEqual(users[1]);

        const out = await request(demo).delete('/api/demo/session').expect(204);
        expect(String(out.headers['set-cookie'])).toMatch(
          /^access_token=; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax/,
        );
      } finally {
        demo.closeAllConnections();
        await new Promise<void>((resolve) => demo.close(() => resolve()));
      }
    },
  );
});

describe('browser build', () => {
  it('type-checks as a browser ES module with no Node types (tsconfig.client.json)', async () => {
    const root = path.resolve(__dirname, '..');
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    // Rejects (with the compiler's output) on any error, e.g. a Node-only import or global.
    await promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.client.json', '--noEmit'], {
      cwd: root,
      timeout: 60000,
    });
  });
});
