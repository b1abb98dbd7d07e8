/**
 * PostgreSQL unreachable (contract section 4): every request that needs the database answers
 * `503` with `Retry-After` and `code: "unavailable"` at once — on the lean paths and in express
 * alike — never 500; open streams stay open; writes are back once the database returns, and
 * nothing from the outage was half-written. The real server reaches the shared PostgreSQL
 * through a gate the test closes: first with the port refused (PostgreSQL stopped), then with
 * connections accepted and dropped (a proxy in front of a stopped PostgreSQL). The shared
 * server on 5432 itself is never stopped.
 */
import net from 'node:net';
import { loadConfig } from '../src/config/config';
import { startServer, type RunningServer } from '../src/server';
import { isDatabaseUnavailable } from '../src/store/db-errors';
import { createDatabase } from '../src/store/prisma';
import { REPLICA_TEST_USERS, adminPutOver, seedCatalog, userTokens } from '../harness/catalog';
import { httpRequest, jsonRequest, type HttpAnswer } from '../harness/http';
import { testEnv } from './support/rest-env';
import { TEST_ADMIN_TOKEN } from '../harness/replica';
import { waitFor } from '../harness/wait';
import { SseClient, type CommentJson } from './support/sse-client';
import { TEST_PG_URL, createTestDatabase, type TestDatabase } from '../harness/test-db';

const USERS = REPLICA_TEST_USERS;
type UserKey = keyof typeof USERS;
const ALBUM_ID = 1;
const TRACK = 'outage.track~1';

/**
 * A loopback TCP gate to PostgreSQL: `refuse()` stops listening (connects fail with
 * ECONNREFUSED, as with PostgreSQL stopped), `drop()` accepts and closes at once, `open()`
 * forwards again on the same port. Closing drops the connections that were open.
 */
interface PgGate {
  port: number;
  refuse(): Promise<void>;
  drop(): void;
  open(): Promise<void>;
  close(): Promise<void>;
}

async function startPgGate(upstreamPort: number): Promise<PgGate> {
  const sockets = new Set<net.Socket>();
  let dropping = false;
  const server = net.createServer((client) => {
    if (dropping) return void client.destroy();
    const upstream = net.connect({ host: '127.0.0.1', port: upstreamPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      if (server.listening) server.close(() => resolve());
      else resolve();
    });
  await listen(0);
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    refuse: stopListening,
    drop() {
      dropping = true;
      for (const s of sockets) s.destroy();
    },
    async open() {
      dropping = false;
      if (!server.listening) await listen(port);
    },
    close: stopListening,
  };
}

let db: TestDatabase;
let gate: PgGate;
let running: RunningServer;
let tokens: Record<UserKey, string>;

beforeAll(async () => {
  db = await createTestDatabase();
  gate = await startPgGate(Number(new URL(TEST_PG_URL).port || 5432));
  const url = new URL(db.url);
  url.port = String(gate.port);
  running = await startServer(
    loadConfig(testEnv(url.toString(), { HEARTBEAT_MS: '200', SSE_RETRY_MS: '200' })),
    { quiet: true },
  );
  await seedCatalog(
    adminPutOver(() => running.url),
    {
      users: USERS,
      album: { id: ALBUM_ID, title: 'Outage Album', created_by_id: USERS.creator.id },
      tracks: [{ id: TRACK }],
    },
  );
  tokens = await userTokens(USERS);
});

const streams: SseClient[] = [];
afterAll(async () => {
  for (const s of streams) s.close();
  await running?.shutdown('test');
  await gate?.close();
  await db?.drop();
});

const api = (method: string, path: string, user?: UserKey, body?: unknown) =>
  jsonRequest(`${running.url}${path}`, method, {
    token: user && tokens[user],
    body,
    timeoutMs: 15000,
  });
const admin = (path: string, body: unknown) =>
  jsonRequest(`${running.url}${path}`, 'PUT', { token: TEST_ADMIN_TOKEN, body });
const comments = `/api/tracks/${TRACK}/comments`;

async function openStream(path: string, user: UserKey, lastEventId?: string): Promise<SseClient> {
  const client = await SseClient.open(`${running.url}${path}`, {
    token: tokens[user],
    lastEventId,
  });
  streams.push(client);
  return client;
}

function expectUnavailable(res: { status: number; headers: HttpAnswer['headers'] }, body: unknown) {
  expect(res.status).toBe(503);
  expect(res.headers['retry-after']).toBe('1');
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(body).toEqual({ error: { code: 'unavailable', message: expect.any(String) } });
}

async function listContents(user: UserKey): Promise<string[]> {
  const res = await api('GET', `${comments}?limit=200`, user);
  expect(res.status).toBe(200);
  return (res.json as { comments: CommentJson[] }).comments.map((c) => c.content);
}

/**
 * Users whose next request cannot be served from the authenticator's short cache: each
 * outage uses its own, so its stream opens have to reach the database.
 */
const streamUsersOf = { refused: ['carol', 'dave'], dropped: ['erin', 'creator'] } as const;

describe.each(['refused', 'dropped'] as const)('PostgreSQL unreachable (%s)', (how) => {
  test('requests that need it answer 503 unavailable; open streams stay open; writes are back after', async () => {
    // Before: a stream is open and alice has just written (her user and the track are cached,
    // so her next POST reaches the lean path's own write, not only its authentication).
    const stream = await openStream(`/api/tracks/${TRACK}/events`, 'bob');
    expect(stream.status).toBe(200);
    await stream.waitForEvent((e) => e.event === 'connected');
    const before = await api('POST', comments, 'alice', { content: `before ${how}` });
    expect(before.status).toBe(201);
    const mine = (before.json as { comment: CommentJson }).comment;
    await stream.waitForEvent((e) => e.data.comment?.id === mine.id);
    const contentsBefore = await listContents('alice');

    if (how === 'refused') await gate.refuse();
    else gate.drop();
    try {
      const pingsAtCut = stream.comments().length;
      // alice's user is still in the authenticator's short cache (she just wrote), so this
      // open gets past auth; the hub has no live state for her personal stream yet and must
      // answer it before sending any of the stream.
      const cachedUser = await openStream('/api/me/events', 'alice');
      expectUnavailable(cachedUser, await cachedUser.bodyJson());
      // The lean write path (plain JSON POST), and the same request through express.
      const lean = await api('POST', comments, 'alice', { content: `during ${how}` });
      expectUnavailable(lean, lean.json);
      const viaApp = await api('POST', `${comments}?via=app`, 'alice', { content: 'x' });
      expectUnavailable(viaApp, viaApp.json);
      expect(lean.json).toEqual(viaApp.json);

      const form = await httpRequest(`${running.url}${comments}`, 'POST', {
        headers: {
          Authorization: `Bearer ${tokens.bob}`,
          'Content-Type': 'application/x-www-form-urlencoded',
        },
        body: 'content=during',
      });
      expectUnavailable(form, form.json);
      for (const res of [
        await api('GET', comments, 'bob'),
        await api('PATCH', `/api/comments/${mine.id}`, 'alice', { content: 'edited' }),
        await api('DELETE', `/api/comments/${mine.id}`, 'alice'),
        await admin(`/api/admin/tracks/${TRACK}`, { title: 'renamed', album_id: ALBUM_ID }),
      ]) {
        expectUnavailable(res, res.json);
      }

      // Stream opens (the lean stream path hands them to express, which answers).
      const [trackUser, meUser] = streamUsersOf[how];
      for (const refused of [
        await openStream(`/api/tracks/${TRACK}/events`, trackUser),
        await openStream('/api/me/events', meUser, '1'),
      ]) {
        expectUnavailable(refused, await refused.bodyJson());
      }

      expect((await api('GET', '/readyz')).status).toBe(503);
      expect((await api('GET', '/healthz')).status).toBe(200);
      // The open stream is still served: heartbeats keep arriving after the cut.
      await stream.waitForComments(() => true, pingsAtCut + 2);
      expect(stream.ended).toBe(false);
    } finally {
      await gate.open();
    }

    // Back: the first write that reaches the database succeeds, and the open stream gets it.
    let after: HttpAnswer | undefined;
    await waitFor(
      async () => {
        after = await api('POST', comments, 'alice', { content: `after ${how}` });
        return after.status === 201;
      },
      { timeoutMs: 15000, intervalMs: 100, what: 'a write once PostgreSQL is back' },
    );
    const back = (after!.json as { comment: CommentJson }).comment;
    await stream.waitForEvent((e) => e.data.comment?.id === back.id);
    expect(stream.ended).toBe(false);
    // Nothing from the outage was written, and the comment it could not edit is unchanged.
    expect(await listContents('alice')).toEqual([...contentsBefore, `after ${how}`]);
    expect((await api('GET', '/readyz')).status).toBe(200);
    stream.close();
  });
});

describe('isDatabaseUnavailable', () => {
  /** The error each way the service reaches the database fails with, on a database at `url`. */
  async function failures(url: string): Promise<unknown[]> {
    const { prisma, query } = createDatabase(url, 2);
    const errors: unknown[] = [];
    const attempts: (() => Promise<unknown>)[] = [
      () => query('SELECT 1', []),
      () => prisma.$queryRaw`SELECT 1`,
      () => prisma.user.findUnique({ where: { id: 1 } }),
      () => prisma.$transaction((tx) => tx.user.findUnique({ where: { id: 1 } })),
    ];
    try {
      for (const attempt of attempts) {
        await attempt().then(
          () => errors.push(new Error('succeeded')),
          (err: unknown) => errors.push(err),
        );
      }
    } finally {
      await prisma.$disconnect();
    }
    return errors;
  }

  const gated = () => {
    const url = new URL(db.url);
    url.port = String(gate.port);
    return url.toString();
  };

  test('is true for every error of an unreachable database, raw or through Prisma', async () => {
    await gate.refuse();
    try {
      const refused = await failures(gated());
      expect(refused.map((e) => isDatabaseUnavailable(e))).toEqual([true, true, true, true]);
    } finally {
      await gate.open();
    }
    gate.drop();
    try {
      const dropped = await failures(gated());
      expect(dropped.map((e) => isDatabaseUnavailable(e))).toEqual([true, true, true, true]);
    } finally {
      await gate.open();
    }
  });

  test('is false for statements the database refused', async () => {
    const { prisma, query } = createDatabase(db.url, 2);
    try {
      const refusals = await Promise.all(
        [
          () => query('SELEC 1', []),
          () => query('SELECT 1 / $1::int', [0]),
          () => prisma.$queryRaw`SELECT ${'x'}::int`,
          () => prisma.user.create({ data: { id: USERS.alice.id, username: 'again' } }),
          () => prisma.album.create({ data: { id: 999, title: 'orphan', createdById: 999999 } }),
          () => prisma.user.update({ where: { id: 999999 }, data: { username: 'nobody' } }),
        ].map((f) =>
          f().then(
            () => new Error('succeeded'),
            (err: unknown) => err,
          ),
        ),
      );
      for (const err of refusals) {
        expect([String(err), isDatabaseUnavailable(err)]).toEqual([String(err), false]);
      }
    } finally {
      await prisma.$disconnect();
    }
  });

  test('reads SQLSTATEs, Prisma codes and causes of errors this machine cannot easily cause', () => {
    const unavailable = [
      { code: '57P01', severity: 'FATAL', message: 'terminating connection' },
      { code: '57P03', severity: 'FATAL', message: 'the database system is starting up' },
      { code: '08006', message: 'connection failure' },
      { code: '53300', message: 'the embedded database serves one connection at a time' },
      { code: 'P1017', message: 'Server has closed the connection.' },
      { code: 'P2024', message: 'Timed out fetching a new connection from the connection pool' },
      {
        code: 'P2028',
        message: 'Transaction API error: Unable to start a transaction in the given time.',
      },
      { meta: { driverAdapterError: { cause: { kind: 'postgres', code: '57P02' } } } },
      {
        meta: {
          driverAdapterError: { cause: { originalCode: '53300', kind: 'TooManyConnections' } },
        },
      },
      new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]),
      new Error('wrapped', { cause: Object.assign(new Error('y'), { code: 'EHOSTUNREACH' }) }),
      new Error('timeout exceeded when trying to connect'),
    ];
    for (const err of unavailable) expect([err, isDatabaseUnavailable(err)]).toEqual([err, true]);
    const refused = [
      { code: '23505', message: 'duplicate key' },
      { code: '42P05', message: 'prepared statement "tc_0" already exists' },
      { code: 'P2002', message: 'Unique constraint failed' },
      { code: 'P2028', message: 'Transaction API error: Transaction already closed' },
      { code: 'not_found', message: 'track not found' },
      new Error('something else'),
      null,
      'ECONNREFUSED',
    ];
    for (const err of refused) expect([err, isDatabaseUnavailable(err)]).toEqual([err, false]);
  });
});
