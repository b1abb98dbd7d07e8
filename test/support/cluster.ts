import { randomUUID } from 'node:crypto';
import http from 'node:http';
import {
  REPLICA_TEST_USERS,
  adminPutOver,
  putTrack,
  seedCatalog,
  userTokens,
} from '../../harness/catalog';
import { httpRequest, jsonRequest, type HttpAnswer } from '../../harness/http';
import { startNginx, type NginxOptions, type RunningNginx } from '../../harness/nginx';
import type { RedisServer } from '../../harness/redis-server';
import type { Replica } from '../../harness/replica';
import { waitFor } from '../../harness/wait';
import { startStack } from './stack';
import type { TestDatabase } from '../../harness/test-db';
import type { CommentJson } from './sse-client';
import { SseParser } from './sse-parser';

export { httpRequest, type HttpAnswer };

/** The catalogue every cluster gets (its album is CLUSTER_ALBUM_ID, owned by `creator`). */
export const CLUSTER_USERS = REPLICA_TEST_USERS;
export type ClusterUser = keyof typeof CLUSTER_USERS;
export const CLUSTER_ALBUM_ID = 1;

export interface RequestOptions {
  /** Sent as `Authorization: Bearer`. */
  user?: ClusterUser;
  body?: unknown;
  headers?: Record<string, string>;
  /** Source address of the client socket (e.g. 127.0.0.2). */
  localAddress?: string;
  timeoutMs?: number;
}

export interface Cluster {
  db: TestDatabase;
  redis: RedisServer;
  /** nginx in front of every replica port (absent with `nginx: false`). */
  nginx: RunningNginx | undefined;
  /** nginx's URL, or the first replica's without nginx. */
  url: string;
  /** The replica now running in each slot (a slot keeps its port across restarts). */
  replicas: Replica[];
  /** Every replica process ever started, stopped ones included (for their output). */
  allReplicas: Replica[];
  /** The environment of every replica (besides PORT). */
  replicaEnv: Record<string, string>;
  tokens: Record<ClusterUser, string>;
  /** One request on its own connection (replicas die and come back on the same port). */
  request(base: string, method: string, path: string, opts?: RequestOptions): Promise<HttpAnswer>;
  /** POSTs a comment as `user` to `base`; throws unless 201. */
  postComment(
    base: string,
    user: ClusterUser,
    trackId: string,
    content: string,
  ): Promise<CommentJson>;
  /** Every comment of a track in creation order (all pages). */
  listComments(base: string, trackId: string): Promise<CommentJson[]>;
  /** A fresh track on the album (through the admin API of the first running replica). */
  newTrack(): Promise<string>;
  /** Starts a new replica on the port of slot `slot`, whose process must have exited. */
  restartReplica(slot: number): Promise<Replica>;
  /** Parsed /metrics of the replica in `slot`. */
  metrics(slot: number): Promise<MetricSamples>;
  /** Output (stdout + stderr) of every replica ever started. */
  allOutput(): string;
  /** Stops clients' processes, nginx, replicas, Redis and drops the database; safe to call twice. */
  close(): Promise<void>;
}

export interface ClusterOptions {
  /** Number of replicas (default 3). */
  replicas?: number;
  /** Replica environment on top of the defaults (DATABASE_URL, REDIS_URL, TRUST_PROXY...). */
  env?: Record<string, string>;
  /** Edge limits for nginx, or false for no nginx (default: nginx with its defaults). */
  nginx?: false | Omit<NginxOptions, 'upstreams'>;
}

// ---------------------------------------------------------------- Prometheus text

export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export class MetricSamples {
  constructor(readonly samples: MetricSample[]) {}

  static parse(text: string): MetricSamples {
    const samples: MetricSample[] = [];
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
      if (!m) throw new Error(`unparseable metrics line: ${line}`);
      const labels: Record<string, string> = {};
      const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      for (let lm = labelRe.exec(m[2] ?? ''); lm; lm = labelRe.exec(m[2] ?? '')) {
        labels[lm[1]!] = lm[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
      }
      const raw = m[3]!;
      // Prometheus parses values with Go's ParseFloat (case-insensitive NaN/Inf);
      // prom-client writes NaN as "Nan".
      const value = /^[+-]?inf$/i.test(raw)
        ? (raw.startsWith('-') ? -1 : 1) * Infinity
        : /^nan$/i.test(raw)
          ? NaN
          : Number(raw);
      if (Number.isNaN(value) && !/^nan$/i.test(raw)) throw new Error(`bad metric value: ${line}`);
      samples.push({ name: m[1]!, labels, value });
    }
    return new MetricSamples(samples);
  }

  /** Samples named `name` whose labels include `labels`. */
  find(name: string, labels: Record<string, string> = {}): MetricSample[] {
    return this.samples.filter(
      (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
  }

  has(name: string, labels: Record<string, string> = {}): boolean {
    return this.find(name, labels).length > 0;
  }

  /** Sum over the matching samples; 0 when there are none. */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.find(name, labels).reduce((sum, s) => sum + s.value, 0);
  }
}

// ---------------------------------------------------------------- HTTP

/** Waits until GET /readyz on `base` answers 200. */
export function waitReady(base: string, timeoutMs = 60000): Promise<void> {
  return waitFor(async () => (await httpRequest(`${base}/readyz`, 'GET')).status === 200, {
    timeoutMs,
    intervalMs: 100,
    what: `${base}/readyz = 200`,
  });
}

// ---------------------------------------------------------------- cluster

/**
 * A fresh PostgreSQL database, a private Redis, `replicas` real server
 * processes on both (TRUST_PROXY=loopback, as behind nginx on the same host),
 * nginx in front of them, and the catalogue seeded through the admin API.
 * Whatever was started is stopped again if a step fails.
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const stack = await startStack({
    replicas: opts.replicas ?? 3,
    env: { TRUST_PROXY: 'loopback', LOG_LEVEL: 'warn', ...opts.env },
    replicaTimeoutMs: 90000,
    killAfterMs: 15000,
    debugVar: 'CLUSTER_DEBUG',
  });
  let nginx: RunningNginx | undefined;
  stack.beforeReplicasStop(() => nginx?.stop());

  try {
    const replicas = [...stack.replicas];
    if (opts.nginx !== false) {
      nginx = await startNginx({
        ...(opts.nginx ?? {}),
        upstreams: replicas.map((r) => `127.0.0.1:${r.port}`),
      });
    }

    const tokens = await userTokens(CLUSTER_USERS);
    const request: Cluster['request'] = (base, method, path, o = {}) =>
      jsonRequest(`${base}${path}`, method, {
        token: o.user && tokens[o.user],
        body: o.body,
        headers: o.headers,
        localAddress: o.localAddress,
        timeoutMs: o.timeoutMs,
      });
    const admin = adminPutOver(() => {
      const target = replicas.find((r) => !r.exited);
      if (!target) throw new Error('no running replica for the admin API');
      return target.url;
    });
    await seedCatalog(admin, {
      users: CLUSTER_USERS,
      album: {
        id: CLUSTER_ALBUM_ID,
        title: 'Cluster Album',
        created_by_id: CLUSTER_USERS.creator.id,
      },
    });

    const cluster: Cluster = {
      db: stack.db,
      redis: stack.redis,
      nginx,
      url: nginx?.url ?? replicas[0]!.url,
      replicas,
      allReplicas: stack.replicas,
      replicaEnv: stack.replicaEnv,
      tokens,
      request,
      async postComment(base, user, trackId, content) {
        const res = await request(
          base,
          'POST',
          `/api/tracks/${encodeURIComponent(trackId)}/comments`,
          {
            user,
            body: { content, timestamp: 0 },
          },
        );
        if (res.status !== 201) throw new Error(`POST comment: got ${res.status} ${res.text}`);
        return (res.json as { comment: CommentJson }).comment;
      },
      async listComments(base, trackId) {
        const all: CommentJson[] = [];
        let cursor: string | null = null;
        do {
          const query = `order=created&limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
          const res = await request(
            base,
            'GET',
            `/api/tracks/${encodeURIComponent(trackId)}/comments?${query}`,
            { user: 'alice' },
          );
          if (res.status !== 200) throw new Error(`list comments: ${res.status} ${res.text}`);
          const page = res.json as { comments: CommentJson[]; next_cursor: string | null };
          all.push(...page.comments);
          cursor = page.next_cursor;
        } while (cursor);
        return all;
      },
      newTrack: () => putTrack(admin, CLUSTER_ALBUM_ID, { id: `t-${randomUUID()}` }),
      async restartReplica(slot) {
        const dead = replicas[slot];
        if (!dead) throw new Error(`no replica slot ${slot}`);
        if (!dead.exited) throw new Error(`replica on :${dead.port} is still running`);
        const fresh = await stack.launch(dead.port);
        replicas[slot] = fresh;
        return fresh;
      },
      async metrics(slot) {
        const res = await httpRequest(`${replicas[slot]!.url}/metrics`, 'GET');
        if (res.status !== 200) throw new Error(`/metrics of slot ${slot}: ${res.status}`);
        return MetricSamples.parse(res.text);
      },
      allOutput: () => stack.replicas.map((r) => r.output()).join('\n'),
      close: stack.close,
    };
    return cluster;
  } catch (err) {
    await stack.close().catch(() => undefined);
    throw err;
  }
}

// ---------------------------------------------------------------- a resuming SSE client

export interface ReceivedEvent {
  id: number;
  type: string;
  data: Record<string, unknown>;
  /** Which connection (0-based) of this subscriber carried it. */
  connection: number;
}

/**
 * A subscriber that behaves like a careful EventSource: it reconnects after
 * the server's last `retry:` hint whenever its stream ends or is refused, and
 * resumes with `Last-Event-ID` (starting from `initialLastEventId`, so even
 * a first connection that drops before any event loses nothing).
 */
export class ResumingSubscriber {
  /** Stored (id-carrying) events in arrival order, over every connection. */
  readonly events: ReceivedEvent[] = [];
  /** Connections that answered 200. */
  connections = 0;
  /** Answers other than 200 (e.g. 503 from a draining replica) and failed connects. */
  refusals = 0;
  /** `retry:` values seen, in order. */
  readonly retries: number[] = [];
  lastEventId: string;

  private retryMs = 1000;
  private stopped = false;
  private current: http.ClientRequest | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly url: string,
    private readonly token: string,
    initialLastEventId = '0',
  ) {
    this.lastEventId = initialLastEventId;
  }

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.current?.destroy();
  }

  private connect(): void {
    if (this.stopped) return;
    const connection = this.connections;
    let over = false;
    const again = (delayMs: number) => {
      if (over) return;
      over = true;
      this.current = null;
      if (this.stopped) return;
      // Jitter, as browsers' reconnects are not synchronised either.
      this.timer = setTimeout(() => this.connect(), delayMs + Math.random() * 200);
    };
    const req = http.get(
      this.url,
      {
        agent: false,
        headers: {
          Accept: 'text/event-stream',
          Authorization: `Bearer ${this.token}`,
          'Last-Event-ID': this.lastEventId,
        },
      },
      (res) => {
        if (res.statusCode !== 200) {
          this.refusals++;
          res.resume();
          res.on('end', () => again(500));
          res.on('error', () => again(500));
          res.on('close', () => again(500));
          return;
        }
        this.connections++;
        res.setEncoding('utf8');
        const parser = new SseParser({
          onEvent: (block) => {
            if (block.id === undefined) return;
            this.events.push({
              id: Number(block.id),
              type: block.event,
              data: JSON.parse(block.data) as Record<string, unknown>,
              connection,
            });
          },
          onRetry: (ms) => {
            this.retryMs = ms;
            this.retries.push(ms);
          },
        });
        res.on('data', (chunk: string) => {
          parser.push(chunk);
          if (parser.lastEventId !== undefined) this.lastEventId = parser.lastEventId;
        });
        res.on('end', () => again(this.retryMs));
        res.on('close', () => again(this.retryMs));
        res.on('error', () => again(this.retryMs));
      },
    );
    req.on('error', () => {
      this.refusals++;
      again(this.retryMs);
    });
    this.current = req;
  }

  /** Comment ids of the `new_comment` events received, in arrival order. */
  commentIds(): number[] {
    return this.events
      .filter((e) => e.type === 'new_comment')
      .map((e) => (e.data.comment as { id: number }).id);
  }
}

/**
 * Starts a cluster before the file's tests and closes it after them. Returns a
 * getter: the cluster exists only once `beforeAll` has run.
 */
export function useCluster(opts: ClusterOptions = {}): () => Cluster {
  let cluster: Cluster | undefined;
  beforeAll(async () => {
    cluster = await startCluster(opts);
  }, 240000);
  afterAll(async () => {
    await cluster?.close();
  }, 120000);
  return () => {
    if (!cluster) throw new Error('cluster did not start');
    return cluster;
  };
}
