/**
 * `npm run bench`: SSE fan-out benchmark of the replicated mode on loopback.
 *
 * Starts a private redis-server, a fresh PostgreSQL database and two replicas
 * (optionally nginx in front), seeds users/album/tracks over the admin API,
 * opens N authenticated SSE subscribers over T tracks, posts C comments at R/s
 * and reports delivery latency, loss, duplicates, throughput, POST latency,
 * RSS per open stream and CPU per process. Everything it starts is stopped at
 * the end, also on error and SIGINT. `npm run bench -- --help` for options.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { startNginx, type RunningNginx } from '../harness/nginx';
import { startRedisServer } from '../harness/redis-server';
import {
  startReplica,
  TEST_ADMIN_TOKEN,
  TEST_AUTH_SECRET,
  userToken,
  type Replica,
} from '../harness/replica';
import { createTestDatabase } from '../harness/test-db';
import { nowMs, sleep } from './lib/clock';
import { loadShape, runLoad, type LoadPhase, type LoadResult } from './lib/load';
import { parseOptions, usage, type BenchOptions } from './lib/options';
import { waitFor } from '../harness/wait';
import { findNchanModule } from '../harness/nchan';
import { compareTable, medianRatios, pairRatios, type ComparePair } from './lib/compare';
import { costReport, cpuReport, type CostReport } from './lib/cost';
import { benchNchan, nchanLine } from './lib/nchan-bench';
import {
  childPids,
  cpuBetween,
  findPids,
  readRssKb,
  snapshotCpu,
  type CpuSnapshot,
} from './lib/procstat';
import { Cleanup, ensureFdLimit, log } from './lib/session';
import { replicaProfilePath, summariseProfile } from './lib/profile';
import { round } from './lib/stats';
import { table } from './lib/table';
import { SubscriberPool, type Target } from './lib/subscriber-pool';

const ROOT = path.resolve(__dirname, '..');
const REPLICAS = 2;
/** Started replicas, for their output when the run fails. */
const startedReplicas: Replica[] = [];

async function adminPut(base: string, pathname: string, body: unknown): Promise<void> {
  const res = await fetch(`${base}${pathname}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 200 && res.status !== 201) {
    throw new Error(`PUT ${pathname}: ${res.status} ${(await res.text()).slice(0, 300)}`);
  }
  await res.arrayBuffer();
}

async function inParallel<T>(
  items: T[],
  lanes: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(lanes, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** NODE_OPTIONS (and the profiler's directory) for the replicas. */
function replicaNodeOptions(
  opts: BenchOptions,
  profileDir: string | undefined,
): Record<string, string> {
  const flags = [opts.replicaNodeOptions.trim()];
  if (profileDir) flags.push(`--require ${path.join(__dirname, 'lib/cpu-profile-preload.js')}`);
  const nodeOptions = flags.filter(Boolean).join(' ');
  return {
    ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
    ...(profileDir ? { BENCH_CPU_PROFILE_DIR: profileDir } : {}),
  };
}

/** Sum of a metric's samples in /metrics text whose labels contain `labels` (null if none). */
function sumOf(text: string, name: string, labels = ''): number | null {
  let sum: number | null = null;
  const line = new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm');
  for (const m of text.matchAll(line)) {
    if ((m[1] ?? '').includes(labels)) sum = (sum ?? 0) + Number(m[2]);
  }
  return sum;
}

/** A replica's /metrics text, or null if unreadable. */
async function metricsText(replica: Replica): Promise<string | null> {
  try {
    return await (await fetch(`${replica.url}/metrics`)).text();
  } catch {
    return null;
  }
}

/** Sum of a metric's samples on a replica's /metrics (null if unreadable). */
async function metricSum(replica: Replica, name: string, labels = ''): Promise<number | null> {
  const text = await metricsText(replica);
  return text === null ? null : sumOf(text, name, labels);
}

/** Open track streams per replica, from its /metrics. */
const openStreams = (replica: Replica) =>
  metricSum(replica, 'trackcomments_open_streams', 'kind="track"');

const GC_KINDS = ['minor', 'major', 'incremental', 'weakcb'] as const;
type GcTotals = Record<(typeof GC_KINDS)[number], { count: number; ms: number; over_10ms: number }>;
const GC_METRIC = 'trackcomments_nodejs_gc_duration_seconds';

/** GC pauses so far, by kind, from /metrics text (prom-client's default GC histogram). */
function gcTotals(text: string): GcTotals {
  const totals = {} as GcTotals;
  for (const kind of GC_KINDS) {
    const label = `kind="${kind}"`;
    const count = sumOf(text, `${GC_METRIC}_count`, label);
    if (count === null) continue; // no pause of this kind yet
    totals[kind] = {
      count,
      ms: (sumOf(text, `${GC_METRIC}_sum`, label) ?? 0) * 1000,
      over_10ms: count - (sumOf(text, `${GC_METRIC}_bucket`, `le="0.01",${label}`) ?? 0),
    };
  }
  return totals;
}

/** What a replica's counters read at a load phase, from one /metrics reading (null: unreadable). */
interface PhaseCounters {
  /** Gaps filled from the log (a bus message ahead of one still missing). */
  gapFills: number | null;
  gc: GcTotals | null;
}

async function phaseCounters(replica: Replica): Promise<PhaseCounters> {
  const text = await metricsText(replica);
  if (text === null) return { gapFills: null, gc: null };
  return { gapFills: sumOf(text, 'trackcomments_gap_fills_total'), gc: gcTotals(text) };
}

/** What happened between two GC readings, per kind (only kinds that paused). */
function gcBetween(before: GcTotals | null | undefined, after: GcTotals | null | undefined) {
  if (!before || !after) return null;
  const out: Partial<GcTotals> = {};
  for (const kind of GC_KINDS) {
    const a = after[kind];
    if (!a) continue;
    const b = before[kind] ?? { count: 0, ms: 0, over_10ms: 0 };
    if (a.count === b.count) continue;
    out[kind] = {
      count: a.count - b.count,
      ms: round(a.ms - b.ms, 1),
      over_10ms: a.over_10ms - b.over_10ms,
    };
  }
  return out;
}

/** Median of a few RSS readings a little apart (a single reading can catch a GC in flight). */
async function steadyRssKb(pid: number): Promise<number> {
  const v: number[] = [];
  for (let i = 0; i < 5; i++) {
    v.push(readRssKb(pid));
    await sleep(100);
  }
  return v.sort((a, b) => a - b)[2]!;
}

interface RssReport {
  pid: number;
  streams: number;
  streams_by_metrics: number | null;
  before_kb: number;
  idle_kb: number;
  per_stream_kb: number;
}

/** A later pass's figures (the run's own are the first pass's). */
interface LaterPass {
  latency_ms: LoadResult['latencyMs'];
  post_latency_ms: LoadResult['postLatencyMs'];
  lost: number;
  duplicates: number;
  cost: CostReport;
  /** Run on replicas restarted before it (--restart-replicas). */
  restarted: boolean;
}

async function bench(opts: BenchOptions, cleanup: Cleanup) {
  const startedAt = new Date();
  const t0 = nowMs();
  const runTag = randomBytes(4).toString('hex');
  const users = Math.ceil(opts.subscribers / opts.subscribersPerUser);
  // A user's streams can all land on one replica (always when not proxied); 2x for slack.
  const maxStreamsPerUser = opts.subscribersPerUser * 2;
  const maxStreamsPerReplica = opts.subscribers + 1000;

  // Each process holds at most: all subscriber sockets (generator), a replica's
  // streams (+ pool/redis), nginx two per stream. 1,000 spare for everything else.
  const perGenerator = Math.ceil(opts.subscribers / Math.max(1, opts.workers));
  const fdLimit = ensureFdLimit(
    Math.max(perGenerator, opts.viaNginx ? 2 * opts.subscribers : opts.subscribers) + 1000,
  );
  log(`fd limit: ${fdLimit.action} (soft ${fdLimit.before} -> ${fdLimit.after})`);
  const loadAtStart = os.loadavg().map((v) => round(v, 2));
  if (loadAtStart[0]! > os.cpus().length) {
    log(
      `warning: load average ${loadAtStart[0]} on ${os.cpus().length} cores: figures will be noisy`,
    );
  }

  log('starting redis-server, database, replicas');
  const redis = await startRedisServer();
  cleanup.add('redis-server', () => redis.stop());
  const db = await createTestDatabase();
  cleanup.add('database', () => db.drop());
  const dbName = new URL(db.url).pathname.slice(1);
  log(`database ${dbName}, redis-server :${redis.port}`);

  const serverEnv: Record<string, string> = {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    MAX_STREAMS_PER_USER: String(maxStreamsPerUser),
    MAX_STREAMS_PER_REPLICA: String(maxStreamsPerReplica),
    ...(opts.viaNginx ? { TRUST_PROXY: 'loopback' } : {}),
  };
  const profileDir = opts.profileDir ? path.resolve(ROOT, opts.profileDir) : undefined;
  if (profileDir) fs.mkdirSync(profileDir, { recursive: true });
  const replicas: Replica[] = [];
  const launch = async (port?: number): Promise<Replica> => {
    const r = await startReplica({
      env: {
        ...serverEnv,
        DATABASE_URL: db.url,
        REDIS_URL: redis.url,
        AUTH_SECRET: TEST_AUTH_SECRET,
        ADMIN_TOKEN: TEST_ADMIN_TOKEN,
        ...replicaNodeOptions(opts, profileDir),
      },
      timeoutMs: 60000,
      ...(port ? { port } : {}),
    });
    startedReplicas.push(r);
    cleanup.add(`replica :${r.port}`, async () => {
      const timer = setTimeout(() => void r.kill(), 15000);
      await r.stop('SIGTERM');
      clearTimeout(timer);
    });
    return r;
  };
  const started = await Promise.allSettled(Array.from({ length: REPLICAS }, () => launch()));
  for (const s of started) if (s.status === 'fulfilled') replicas.push(s.value);
  const failedStart = started.find((s) => s.status === 'rejected');
  if (failedStart) throw (failedStart as PromiseRejectedResult).reason;
  log(`replicas: ${replicas.map((r) => `:${r.port} (pid ${r.pid})`).join(', ')}`);
  /** The first pass's processes (later passes may run on restarted ones). */
  const firstPids = replicas.map((r) => r.pid);

  let nginx: RunningNginx | undefined;
  if (opts.viaNginx) {
    nginx = await startNginx({
      upstreams: replicas.map((r) => `127.0.0.1:${r.port}`),
      streamsPerClient: opts.subscribers + 100,
      writesPerSecond: Math.max(opts.rate * 2, 100),
      writeBurst: Math.max(opts.rate, 100),
    });
    const n = nginx;
    cleanup.add('nginx', () => n.stop());
    log(`nginx: :${nginx.port} (pid ${nginx.pid})`);
  }

  // --- seed ---
  const admin = replicas[0]!.url;
  const creatorId = 1;
  const userIds = Array.from({ length: users }, (_, i) => 1000 + i);
  const trackIds = Array.from({ length: opts.tracks }, (_, t) => `bench-track-${t}`);
  const warmupTrack = 'bench-warmup';
  log(`seeding ${users + 1} users, 1 album, ${opts.tracks + 1} tracks`);
  await adminPut(admin, `/api/admin/users/${creatorId}`, {
    username: 'bench_creator',
    is_creator: true,
    is_team: false,
  });
  await adminPut(admin, '/api/admin/albums/1', { title: 'Bench album', created_by_id: creatorId });
  await inParallel(userIds, 16, (id) =>
    adminPut(admin, `/api/admin/users/${id}`, {
      username: `bench_u${id}`,
      is_creator: false,
      is_team: false,
    }),
  );
  await inParallel([...trackIds, warmupTrack], 16, (id) =>
    adminPut(admin, `/api/admin/tracks/${id}`, {
      title: `Track ${id}`,
      album_id: 1,
      duration_s: 600,
    }),
  );
  const tokens = await Promise.all(userIds.map((id) => userToken(id, 3600)));

  const direct: Target[] = replicas.map((r) => ({ host: '127.0.0.1', port: r.port }));
  const viaProxy: Target[] | undefined = nginx
    ? [{ host: '127.0.0.1', port: nginx.port }]
    : undefined;

  // --- warm-up: first requests pay for lazy loading and JIT; keep them out of the figures ---
  const warmUp = async () => {
    if (opts.warmup === 0) return;
    log(`warm-up: ${opts.warmup} POSTs and one stream per replica`);
    const warm = new SubscriberPool({
      runTag: 'warmup',
      trackIds: [warmupTrack],
      targets: direct,
      tokens,
      subscribers: direct.map((_, i) => [i, 0, i, 0] as [number, number, number, number]),
      connectConcurrency: direct.length,
      reconnectDelayMs: 1000,
    });
    await warm.openAll();
    for (const r of replicas) {
      await inParallel(
        Array.from({ length: opts.warmup }, (_, i) => i),
        4,
        async (i) => {
          const res = await fetch(`${r.url}/api/tracks/${warmupTrack}/comments`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${tokens[i % tokens.length]}`,
              'content-type': 'application/json',
            },
            body: JSON.stringify({ content: `warm-up ${i}`, timestamp: 1 }),
          });
          await res.arrayBuffer();
          if (res.status !== 201) throw new Error(`warm-up POST: ${res.status}`);
        },
      );
    }
    warm.close();
  };
  await warmUp();

  // --- measurement hooks ---
  const pg = new Client({ connectionString: db.url });
  pg.on('error', () => undefined);
  await pg.connect();
  cleanup.add('monitoring connection', () => pg.end());
  const pgPids = async (): Promise<{ db: number[]; background: number[] }> => {
    const rows = (
      await pg.query<{ pid: number; datname: string | null; backend_type: string }>(
        'SELECT pid, datname, backend_type FROM pg_stat_activity WHERE pid <> pg_backend_pid()',
      )
    ).rows;
    return {
      db: rows.filter((r) => r.datname === dbName).map((r) => r.pid),
      background: rows.filter((r) => r.backend_type !== 'client backend').map((r) => r.pid),
    };
  };
  const redisPids = findPids(
    (cmd) => cmd.startsWith('redis-server') && cmd.includes(`:${redis.port}`),
  );
  let generatorPids: number[] = [process.pid];
  const snapshot = async (): Promise<CpuSnapshot> => {
    const pgp = await pgPids();
    const groups: Record<string, number[]> = {};
    replicas.forEach((r, i) => (groups[`replica-${i + 1}`] = [r.pid]));
    groups['redis-server'] = redisPids;
    groups['postgres (bench db backends)'] = pgp.db;
    groups['postgres (background)'] = pgp.background;
    if (nginx) groups['nginx'] = [nginx.pid, ...childPids(nginx.pid)];
    groups['generator (main: poster)'] = [process.pid];
    const workers = generatorPids.filter((p) => p !== process.pid);
    if (workers.length) groups['generator (subscriber workers)'] = workers;
    return snapshotCpu(groups, nowMs());
  };

  const rssBefore: number[] = [];
  const rssIdle: number[] = [];
  const streamsByMetrics: (number | null)[] = [];
  const countersAt: Partial<Record<LoadPhase, PhaseCounters[]>> = {};
  const snaps: Partial<Record<LoadPhase, CpuSnapshot>> = {};
  let idleEnd: CpuSnapshot | undefined;
  const onPhase = async (phase: LoadPhase, info: { generatorPids: number[] }) => {
    generatorPids = info.generatorPids;
    if (phase === 'before-connect') {
      // Let the warm-up's garbage settle as the idle reading will (same wait).
      await sleep(opts.idleMs);
      for (const r of replicas) rssBefore.push(await steadyRssKb(r.pid));
      snaps['before-connect'] = await snapshot();
    } else if (phase === 'connected') {
      snaps.connected = await snapshot();
      log(`idle ${opts.idleMs} ms, then reading RSS`);
      await sleep(opts.idleMs);
      idleEnd = await snapshot();
      for (const r of replicas) rssIdle.push(await steadyRssKb(r.pid));
      for (const r of replicas) streamsByMetrics.push(await openStreams(r));
    } else {
      snaps[phase] = await snapshot();
      countersAt[phase] = await Promise.all(replicas.map(phaseCounters));
      // The replicas' profiler (--profile-dir) covers the post window only.
      if (profileDir) for (const r of replicas) process.kill(r.pid, 'SIGUSR2');
    }
  };

  // --- run ---
  const load: LoadResult = await runLoad({
    runTag,
    trackIds,
    subscriberTargets: viaProxy ?? direct,
    postTargets: viaProxy ?? direct,
    tokens,
    ...loadShape(opts),
    onPhase,
    registerCleanup: (name, fn) => cleanup.add(name, fn),
    log,
  });

  // --- later passes: the same load on the same replicas, now warm (--passes) ---
  const laterPasses: LaterPass[] = [];
  for (let pass = 2; pass <= opts.passes; pass++) {
    if (opts.restartReplicas) {
      // A deploy: new replica processes on the same ports, database and bus as they are.
      log(`pass ${pass}/${opts.passes}: restarting the replicas (same database)`);
      for (const [i, old] of replicas.entries()) {
        await old.stop('SIGTERM');
        replicas[i] = await launch(old.port);
      }
      await warmUp();
    } else {
      log(`pass ${pass}/${opts.passes}: the same load on the same replicas`);
    }
    const at: Partial<Record<LoadPhase, CpuSnapshot>> = {};
    const again = await runLoad({
      runTag: `${runTag}p${pass}`,
      trackIds,
      subscriberTargets: viaProxy ?? direct,
      postTargets: viaProxy ?? direct,
      tokens,
      ...loadShape(opts),
      onPhase: async (phase, info) => {
        generatorPids = info.generatorPids;
        if (phase === 'post-start' || phase === 'settled') at[phase] = await snapshot();
      },
      registerCleanup: (name, fn) => cleanup.add(name, fn),
      log,
    });
    const window = cpuBetween(at['post-start']!, at.settled!);
    laterPasses.push({
      latency_ms: again.latencyMs,
      post_latency_ms: again.postLatencyMs,
      lost: again.deliveries.lost,
      duplicates: again.deliveries.duplicates,
      cost: costReport(window, again.comments.posted, again.deliveries.unique),
      restarted: opts.restartReplicas,
    });
  }

  // --- report ---
  const streamsOn = (i: number): number =>
    viaProxy ? (streamsByMetrics[i] ?? NaN) : load.subscribers.perTarget[i]!;
  const rss: RssReport[] = firstPids.map((pid, i) => {
    const streams = streamsOn(i);
    return {
      pid,
      streams,
      streams_by_metrics: streamsByMetrics[i] ?? null,
      before_kb: rssBefore[i]!,
      idle_kb: rssIdle[i]!,
      per_stream_kb: streams > 0 ? round((rssIdle[i]! - rssBefore[i]!) / streams, 2) : NaN,
    };
  });
  const postWindow = cpuBetween(snaps['post-start']!, snaps.settled!);
  const connectPhase = cpuBetween(snaps['before-connect']!, snaps.connected!);
  const perDelivery: Record<string, number> = {};
  if (!viaProxy) {
    replicas.forEach((_, i) => {
      const ms = postWindow.groupsMs[`replica-${i + 1}`]!;
      perDelivery[`replica-${i + 1}`] = round(
        (ms * 1000) / Math.max(1, load.uniquePerTarget[i]!),
        1,
      );
    });
  }
  const result = {
    label: opts.label || null,
    started_at: startedAt.toISOString(),
    duration_s: round((nowMs() - t0) / 1000, 1),
    config: {
      subscribers: opts.subscribers,
      tracks: opts.tracks,
      comments: opts.comments,
      rate_per_s: opts.rate,
      via_nginx: opts.viaNginx,
      replicas: REPLICAS,
      subscriber_workers: opts.workers,
      users: users,
      subscribers_per_user: opts.subscribersPerUser,
      connect_concurrency: opts.connectConcurrency,
      settle_ms: opts.settleMs,
      warmup_posts_per_replica: opts.warmup,
      server_env: serverEnv,
      replica_node_options: opts.replicaNodeOptions || null,
      node: process.version,
      cores: os.cpus().length,
      load_average_at_start: loadAtStart,
      fd_limit: fdLimit,
    },
    latency_ms: load.latencyMs,
    latency_same_replica_ms: viaProxy ? null : load.latencySameTargetMs,
    latency_cross_replica_ms: viaProxy ? null : load.latencyOtherTargetMs,
    /** Arrival minus the POST's response time (negative: frame before response). */
    latency_after_post_response_ms: load.latencyAfterResponseMs,
    deliveries: {
      expected: load.deliveries.expected,
      received: load.deliveries.received,
      unique: load.deliveries.unique,
      lost: load.deliveries.lost,
      duplicates: load.deliveries.duplicates,
      per_s_post_window: load.deliveriesPerSPostWindow,
      per_s_overall: load.deliveriesPerSOverall,
      all_arrived: load.allArrived,
      settle_ms: load.settleMs,
      anomalies: {
        unexpected: load.deliveries.unexpected,
        misrouted: load.deliveries.misrouted,
        id_regressions: load.deliveries.idRegressions,
        foreign: load.deliveries.foreign,
        other_events: load.deliveries.otherEvents,
        unexpected_closes: load.deliveries.unexpectedCloses,
        reconnects: load.deliveries.reconnects,
        socket_errors: load.deliveries.socketErrors,
        http_errors: load.deliveries.httpErrors,
      },
    },
    posts: {
      posted: load.comments.posted,
      failed: load.comments.failed,
      latency_ms: load.postLatencyMs,
      achieved_rate_per_s: load.postRatePerS,
      window_ms: load.postWindowMs,
    },
    subscribers: {
      connected: load.subscribers.connected,
      failed: load.subscribers.failed,
      per_replica: viaProxy ? streamsByMetrics : load.subscribers.perTarget,
      connect_phase_ms: load.subscribers.connectPhaseMs,
      connect_ms: load.subscribers.connectMs,
    },
    rss_per_stream: {
      replicas: rss,
      // Weighted by streams: total growth over total streams.
      mean_per_stream_kb: round(
        rss.reduce((a, r) => a + (r.idle_kb - r.before_kb), 0) /
          rss.reduce((a, r) => a + r.streams, 0),
        2,
      ),
    },
    cpu_post_window: cpuReport(postWindow, {}),
    cost: costReport(postWindow, load.comments.posted, load.deliveries.unique),
    replica_cpu_us_per_delivery: viaProxy ? null : perDelivery,
    /** Log reads to fill a gap (a bus message ahead of a missing one) during the post window. */
    gap_fills_post_window: replicas.map((_, i) => {
      const before = countersAt['post-start']?.[i]?.gapFills;
      const after = countersAt.settled?.[i]?.gapFills;
      return before == null || after == null ? null : after - before;
    }),
    /** Replicas' GC pauses during the post window, by kind: count, total ms, pauses over 10 ms. */
    gc_post_window: replicas.map((_, i) =>
      gcBetween(countersAt['post-start']?.[i]?.gc, countersAt.settled?.[i]?.gc),
    ),
    cpu_connect_phase: cpuReport(connectPhase),
    /** Every stream open, nothing posted: the cost of idle streams (and of anything polling). */
    cpu_idle_with_streams: cpuReport(cpuBetween(snaps.connected!, idleEnd!)),
    /** Passes 2.. (--passes): the first pass above is the first load after the start. */
    later_passes: laterPasses,
    clock: {
      source: 'process.hrtime (CLOCK_MONOTONIC, system-wide)',
      worker_offset_ms_max_abs: load.clock.offsetMsMaxAbs,
      worker_ping_rtt_ms_max: load.clock.rttMsMax,
    },
  };
  return result;
}

export type BenchResult = Awaited<ReturnType<typeof bench>>;

/** Writes a run's JSON as latest.json and as a stamped file; returns the text. */
function writeResult(opts: BenchOptions, name: string, result: { started_at: string }): string {
  const outDir = path.resolve(ROOT, opts.outDir);
  fs.mkdirSync(outDir, { recursive: true });
  const json = JSON.stringify(result, null, 2);
  const stamp = result.started_at.replace(/[:.]/g, '-');
  fs.writeFileSync(
    path.join(outDir, `${name === 'bench' ? 'latest' : `latest-${name}`}.json`),
    json + '\n',
  );
  fs.writeFileSync(
    path.join(outDir, `${name}-${stamp}${opts.label ? '-' + opts.label : ''}.json`),
    json + '\n',
  );
  return json;
}

/** Where each replica's time went in the post window (the profiles are written as they stop). */
async function printProfiles(profileDir: string, result: BenchResult): Promise<void> {
  for (const [i, r] of result.rss_per_stream.replicas.entries()) {
    const file = replicaProfilePath(profileDir, r.pid);
    try {
      await waitFor(() => fs.existsSync(file), { what: file, timeoutMs: 10000, intervalMs: 50 });
      console.log(summariseProfile(file, PROFILE_TOP, `replica-${i + 1} profile (${file})`));
    } catch (err) {
      log(`no profile for replica-${i + 1}: ${(err as Error).message}`);
    }
  }
}

const PROFILE_TOP = 12;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage());
    return;
  }
  const opts = parseOptions(argv, process.env);
  if (opts.profile && !opts.profileDir) opts.profileDir = path.join(opts.outDir, 'profiles');
  // Each run starts and stops its own servers; a signal stops the current run's.
  let cleanup = new Cleanup();
  let interrupted = false;
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      // Ctrl-C reaches this process twice (directly and relayed by the tsx/npm
      // wrappers); only a later, deliberate second signal skips the cleanup.
      if (Date.now() - firstSignalAt < 3000) return;
      log(`${signal} again: exiting without finishing the cleanup`);
      process.exit(130);
    }
    interrupted = true;
    firstSignalAt = Date.now();
    log(`${signal}: stopping everything`);
    void cleanup.run().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const withCleanup = async <T>(what: string, fn: (c: Cleanup) => Promise<T>): Promise<T> => {
    cleanup = new Cleanup();
    try {
      return await fn(cleanup);
    } finally {
      if (!interrupted) {
        log(`${what}: stopping everything`);
        await cleanup.run();
      }
    }
  };

  let compareNchan = opts.compare === 'nchan';
  if (compareNchan) {
    const mod = findNchanModule();
    if ('missing' in mod) {
      log(`--compare nchan skipped: ${mod.missing}`);
      compareNchan = false;
    }
  }
  const pairs: ComparePair[] = [];
  try {
    for (let run = 1; run <= opts.runs; run++) {
      if (opts.runs > 1) log(`=== run ${run}/${opts.runs}: ours ===`);
      const ours = await withCleanup('ours', (c) => bench(opts, c));
      const json = writeResult(opts, 'bench', ours);
      console.log(table(ours));
      if (!compareNchan) console.log(json);
      if (opts.profileDir) await printProfiles(path.resolve(ROOT, opts.profileDir), ours);
      if (!compareNchan) continue;
      log(`=== run ${run}/${opts.runs}: nchan ===`);
      const nchan = await withCleanup('nchan', (c) => benchNchan(opts, c));
      writeResult(opts, 'nchan', nchan);
      console.log(`\nnchan run ${run}: ${nchanLine(nchan)}`);
      pairs.push({ ours, nchan });
    }
    if (pairs.length) {
      console.log(
        `\nours vs nchan (${opts.subscribers} subscribers / ${opts.tracks} tracks / ${opts.comments} ` +
          `comments at ${opts.rate}/s; 2 replicas vs 2 nginx+nchan, each side with a private Redis` +
          `${opts.viaNginx ? '; ours via nginx' : ''})`,
      );
      console.log(compareTable(pairs));
      const outDir = path.resolve(ROOT, opts.outDir);
      fs.writeFileSync(
        path.join(outDir, 'latest-compare.json'),
        JSON.stringify({ pairs: pairs.map(pairRatios), median: medianRatios(pairs) }, null, 2) +
          '\n',
      );
    }
    log(`results written to ${opts.outDir}/`);
  } catch (err) {
    if (interrupted) return; // the signal handler cleans up and exits
    log(`failed: ${(err as Error).stack ?? String(err)}`);
    for (const r of startedReplicas) {
      const out = r.output().trim();
      if (out) log(`replica :${r.port} output (last 3000 chars):\n${out.slice(-3000)}`);
    }
    process.exitCode = 1;
  }
}

void main();
