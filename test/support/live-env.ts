import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { Client } from 'pg';
import { createPrisma, type Db } from '../../src/store/prisma';
import { PrismaEventLog } from '../../src/store/event-log';
import {
  REPLICA_TEST_USERS,
  adminPutOver,
  putTrack,
  seedCatalog,
  userTokens,
} from '../../harness/catalog';
import { httpRequest, jsonRequest, type HttpAnswer } from '../../harness/http';
import type { RedisServer } from '../../harness/redis-server';
import { type Replica } from '../../harness/replica';
import { startStack } from './stack';
import type { TestDatabase } from '../../harness/test-db';
import { SseClient, type CommentJson, type SseOpenOptions } from './sse-client';

/** The catalogue of every live test file (its album is LIVE_ALBUM_ID, owned by `creator`). */
export const LIVE_USERS = {
  ...REPLICA_TEST_USERS,
  frank: { id: 7, username: 'frank', is_creator: false, is_team: false },
} as const;
export type LiveUser = keyof typeof LIVE_USERS;

export const LIVE_ALBUM_ID = 1;
/** Tracks made at setup (tests that count events make their own with `newTrack`). */
export const LIVE_TRACKS = ['live-track-1', 'live-track-2', 'live-track-3'] as const;

export type ApiResponse = HttpAnswer;

export interface LiveEnv {
  db: TestDatabase;
  redis: RedisServer;
  /** Replicas in start order; `a` and `b` are the first two (replaced by `restartReplica`). */
  replicas: Replica[];
  a: Replica;
  b: Replica;
  /** The environment every replica of this setup gets (besides PORT). */
  replicaEnv: Record<string, string>;
  tokens: Record<LiveUser, string>;
  /** A plain HTTP request (no keep-alive: replicas die and come back on the same port). */
  api(
    replica: Replica | string,
    method: string,
    path: string,
    opts?: { user?: LiveUser; body?: unknown; headers?: Record<string, string> },
  ): Promise<ApiResponse>;
  /** POST a comment as `user`; asserts 201 and returns it. */
  postComment(
    replica: Replica,
    user: LiveUser,
    trackId: string,
    content: string,
    timestamp?: number,
  ): Promise<CommentJson>;
  /** A fresh track on the album (via the admin API on `a`). */
  newTrack(): Promise<string>;
  /** Opens a track stream as `user` (closed by `close()` if the test does not). */
  trackStream(
    replica: Replica | string,
    user: LiveUser,
    trackId: string,
    opts?: SseOpenOptions & { query?: Record<string, string> },
  ): Promise<SseClient>;
  /** Opens `user`'s personal stream. */
  personalStream(
    replica: Replica | string,
    user: LiveUser,
    opts?: SseOpenOptions & { query?: Record<string, string> },
  ): Promise<SseClient>;
  /** Registers a client opened elsewhere so `close()` closes it. */
  track(client: SseClient): SseClient;
  /** Starts one more replica of this setup (on `port` if given; `env` overrides the setup's). */
  startReplica(port?: number, env?: Record<string, string>): Promise<Replica>;
  /** Starts a new replica on the port of `dead` (which must have exited) and puts it in its place. */
  restartReplica(dead: Replica): Promise<Replica>;
  /** The /metrics text of a replica. */
  metrics(replica: Replica): Promise<string>;
  /** The event log over this database, for what the replicas would do on a timer (pruning). */
  eventLog(): PrismaEventLog;
  /** A query on the test database (for asserting rows, e.g. what is still unpublished). */
  sql<R extends Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  /** Stops every client and process, drops the database; safe to call twice. */
  close(): Promise<void>;
}

/** Sum of a metric's samples in Prometheus text (all label sets), 0 when absent. */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const labelText = m[2] ?? '';
    if (!Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) continue;
    sum += Number(m[3]);
  }
  return sum;
}

/**
 * A fresh PostgreSQL database, a private Redis, `replicas` (default 2) real
 * server processes on both, and the catalogue seeded through the admin API.
 * Whatever was started is stopped again if a step fails.
 */
export async function startLiveEnv(
  opts: { env?: Record<string, string>; replicas?: number } = {},
): Promise<LiveEnv> {
  const stack = await startStack({
    replicas: opts.replicas ?? 2,
    env: { LOG_LEVEL: 'warn', DRAIN_SPREAD_MS: '0', SHUTDOWN_TIMEOUT_MS: '3000', ...opts.env },
    killAfterMs: 8000,
    debugVar: 'LIVE_DEBUG',
  });
  const { db, replicas } = stack;
  const clients = new Set<SseClient>();
  let prisma: Db | undefined;
  let log: PrismaEventLog | undefined;
  let pg: Promise<Client> | undefined;
  stack.beforeReplicasStop(() => {
    for (const c of clients) c.close();
    clients.clear();
  });
  stack.afterReplicasStop(() => prisma?.$disconnect());
  stack.afterReplicasStop(async () => {
    if (pg) await (await pg.catch(() => undefined))?.end();
  });

  try {
    const base = (r: Replica | string) => (typeof r === 'string' ? r : r.url);
    const tokens = await userTokens(LIVE_USERS);

    const api: LiveEnv['api'] = (replica, method, path, o = {}) =>
      jsonRequest(`${base(replica)}${path}`, method, {
        token: o.user && tokens[o.user],
        body: o.body,
        headers: o.headers,
        timeoutMs: 15000,
      });
    const admin = adminPutOver(() => replicas[0]!.url);
    await seedCatalog(admin, {
      users: LIVE_USERS,
      album: { id: LIVE_ALBUM_ID, title: 'Live Album', created_by_id: LIVE_USERS.creator.id },
      tracks: LIVE_TRACKS.map((id) => ({ id })),
    });

    const openStream = async (
      replica: Replica | string,
      user: LiveUser,
      path: string,
      o: SseOpenOptions & { query?: Record<string, string> } = {},
    ) => {
      const { query, ...rest } = o;
      const u = new URL(`${base(replica)}${path}`);
      for (const [k, v] of Object.entries(query ?? {})) u.searchParams.set(k, v);
      const client = await SseClient.open(u.toString(), { token: tokens[user], ...rest });
      clients.add(client);
      return client;
    };

    const env: LiveEnv = {
      db,
      redis: stack.redis,
      replicas,
      a: replicas[0]!,
      b: replicas[1] ?? replicas[0]!,
      replicaEnv: stack.replicaEnv,
      tokens,
      api,
      async postComment(replica, user, trackId, content, timestamp = 0) {
        const res = await api(
          replica,
          'POST',
          `/api/tracks/${encodeURIComponent(trackId)}/comments`,
          {
            user,
            body: { content, timestamp },
          },
        );
        if (res.status !== 201) {
          throw new Error(`POST comment on :${replica.port}: got ${res.status} ${res.text}`);
        }
        return (res.json as { comment: CommentJson }).comment;
      },
      newTrack: () => putTrack(admin, LIVE_ALBUM_ID, { id: `t-${randomUUID()}` }),
      trackStream: (replica, user, trackId, o) =>
        openStream(replica, user, `/api/tracks/${encodeURIComponent(trackId)}/events`, o),
      personalStream: (replica, user, o) => openStream(replica, user, '/api/me/events', o),
      track(client) {
        clients.add(client);
        return client;
      },
      startReplica: (port, extra) => stack.launch(port, extra),
      async restartReplica(dead) {
        if (!dead.exited) throw new Error(`replica on :${dead.port} is still running`);
        const fresh = await stack.launch(dead.port);
        if (env.a === dead) env.a = fresh;
        if (env.b === dead) env.b = fresh;
        return fresh;
      },
      async metrics(replica) {
        const res = await httpRequest(`${replica.url}/metrics`, 'GET', { timeoutMs: 15000 });
        if (res.status !== 200) throw new Error(`/metrics on :${replica.port}: ${res.status}`);
        return res.text;
      },
      eventLog() {
        prisma ??= createPrisma(db.url, 2);
        log ??= new PrismaEventLog(prisma);
        return log;
      },
      async sql<R extends Record<string, unknown>>(text: string, params: unknown[] = []) {
        pg ??= (async () => {
          const client = new Client({ connectionString: db.url });
          client.on('error', () => undefined);
          await client.connect();
          return client;
        })();
        const res = await (await pg).query<R>(text, params);
        return res.rows;
      },
      close: stack.close,
    };
    return env;
  } catch (err) {
    await stack.close().catch(() => undefined);
    throw err;
  }
}

/** Resolves once `client` has received its `connected` event. */
export const connected = (client: SseClient) => client.waitForEvent((e) => e.event === 'connected');

/** Track streams of bob and carol on `env.a` and of dave and erin on `env.b`, in that order. */
export async function twoSubscribersPerReplica(
  env: LiveEnv,
  trackId: string,
): Promise<SseClient[]> {
  return [
    await env.trackStream(env.a, 'bob', trackId),
    await env.trackStream(env.a, 'carol', trackId),
    await env.trackStream(env.b, 'dave', trackId),
    await env.trackStream(env.b, 'erin', trackId),
  ];
}

export interface TcpProxy {
  /** `host:port` clients connect to. */
  port: number;
  /** Drops every connection and refuses new ones until `restore()`. */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

/**
 * A loopback TCP proxy to `upstreamPort` that a test can cut: gives one
 * replica its own path to Redis, so that replica alone loses the bus.
 */
export async function startTcpProxy(upstreamPort: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let isCut = false;
  const server = net.createServer((client) => {
    if (isCut) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: '127.0.0.1', port: upstreamPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const dropAll = () => {
    for (const s of sockets) s.destroy();
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      isCut = true;
      dropAll();
    },
    restore() {
      isCut = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        dropAll();
        server.close(() => resolve());
      }),
  };
}
