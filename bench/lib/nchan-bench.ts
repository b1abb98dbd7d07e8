/**
 * The bench's load against Nchan: two nginx+Nchan instances sharing one private Redis (as
 * our two replicas share theirs), subscribers spread over both, comments published to both
 * in turn, with the same generator, phases and figures as `bench()` in run.ts.
 */
import { fifths } from './table';
import os from 'node:os';
import { startNchan, type RunningNchan } from '../../harness/nchan';
import { DEFAULT_HEARTBEAT_MS } from '../../src/config/config';
import { startRedisServer } from '../../harness/redis-server';
import { nowMs, sleep } from './clock';
import { costReport, cpuReport } from './cost';
import type { BenchOptions } from './options';
import { loadShape, runLoad, type LoadPhase } from './load';
import {
  childPids,
  cpuBetween,
  findPids,
  readRssKb,
  snapshotCpu,
  type CpuSnapshot,
} from './procstat';
import { PROTOCOLS } from './protocol';
import { Cleanup, ensureFdLimit, log } from './session';
import { round } from './stats';
import type { Target } from './subscriber-pool';

const INSTANCES = 2;

/**
 * Our replicas' heartbeat in the bench (`HEARTBEAT_MS`'s default): Nchan pings its streams as
 * often, so both sides pay for keeping proxies awake.
 */
const PING_INTERVAL_S = DEFAULT_HEARTBEAT_MS / 1000;

/** One measured Nchan run; the same figures under the same names as our run's result. */
export async function benchNchan(opts: BenchOptions, cleanup: Cleanup) {
  const startedAt = new Date();
  const t0 = nowMs();
  const runTag = `n${Math.floor(Math.random() * 1e8).toString(16)}`;
  const perGenerator = Math.ceil(opts.subscribers / Math.max(1, opts.workers));
  ensureFdLimit(Math.max(perGenerator, opts.subscribers) + 1000);

  log('nchan: starting redis-server and 2 nginx+nchan instances');
  const redis = await startRedisServer();
  cleanup.add('redis-server (nchan)', () => redis.stop());
  const instances: RunningNchan[] = [];
  for (let i = 0; i < INSTANCES; i++) {
    const n = await startNchan({
      redisUrl: redis.url,
      connections: opts.subscribers + 1000,
      eventName: 'new_comment',
      pingIntervalS: PING_INTERVAL_S,
    });
    cleanup.add(`nchan :${n.port}`, () => n.stop());
    instances.push(n);
  }
  log(`nchan: ${instances.map((n) => `:${n.port} (pid ${n.pid})`).join(', ')}`);
  const targets: Target[] = instances.map((n) => ({ host: '127.0.0.1', port: n.port }));
  const trackIds = Array.from({ length: opts.tracks }, (_, t) => `bench-track-${t}`);

  // The same number of warm-up publishes per instance as our replicas get.
  const protocol = PROTOCOLS.nchan;
  for (const n of instances) {
    for (let i = 0; i < opts.warmup; i++) {
      const res = await fetch(`${n.url}${protocol.postPath('bench-warmup')}`, {
        method: 'POST',
        body: protocol.postBody('warmup', i, 'bench-warmup', 0),
      });
      await res.arrayBuffer();
      if (!protocol.accepted(res.status)) throw new Error(`nchan warm-up publish: ${res.status}`);
    }
  }

  const redisPids = findPids(
    (cmd) => cmd.startsWith('redis-server') && cmd.includes(`:${redis.port}`),
  );
  const workersOf = (n: RunningNchan) => childPids(n.pid);
  let generatorPids: number[] = [process.pid];
  const snapshot = (): CpuSnapshot => {
    const groups: Record<string, number[]> = {};
    instances.forEach((n, i) => (groups[`nchan-${i + 1}`] = [n.pid, ...workersOf(n)]));
    groups['redis-server'] = redisPids;
    groups['generator (main: poster)'] = [process.pid];
    const workers = generatorPids.filter((p) => p !== process.pid);
    if (workers.length) groups['generator (subscriber workers)'] = workers;
    return snapshotCpu(groups, nowMs());
  };
  // RSS of the nginx workers, which hold the streams.
  const rssKb = () =>
    instances.map((n) => workersOf(n).reduce((a, pid) => a + (readRssKb(pid) || 0), 0));
  const snaps: Partial<Record<LoadPhase, CpuSnapshot>> = {};
  let rssBefore: number[] = [];
  let rssIdle: number[] = [];
  const load = await runLoad({
    runTag,
    trackIds,
    subscriberTargets: targets,
    postTargets: targets,
    tokens: ['unused'],
    ...loadShape(opts),
    server: 'nchan',
    onPhase: async (phase, info) => {
      generatorPids = info.generatorPids;
      if (phase === 'before-connect') rssBefore = rssKb();
      if (phase === 'connected') {
        // Nchan subscribes to Redis after the stream's head is out: the same quiet time as
        // our run gives every subscription time to be in place before the first publish.
        await sleep(opts.idleMs);
        rssIdle = rssKb();
      }
      snaps[phase] = snapshot();
    },
    registerCleanup: (name, fn) => cleanup.add(name, fn),
    log,
  });

  const postWindow = cpuBetween(snaps['post-start']!, snaps.settled!);
  const perInstance = load.subscribers.perTarget;
  return {
    server: 'nchan' as const,
    started_at: startedAt.toISOString(),
    duration_s: round((nowMs() - t0) / 1000, 1),
    config: {
      subscribers: opts.subscribers,
      tracks: opts.tracks,
      comments: opts.comments,
      rate_per_s: opts.rate,
      instances: INSTANCES,
      subscriber_workers: opts.workers,
      load_average_at_start: os.loadavg().map((v) => round(v, 2)),
    },
    latency_ms: load.latencyMs,
    /** As ours: a tail in the first fifth only is a cold start, on either side. */
    latency_by_fifth_ms: load.latencyBySliceMs,
    latency_after_post_response_ms: load.latencyAfterResponseMs,
    ...load.generatorLoopDelays,
    deliveries: {
      expected: load.deliveries.expected,
      unique: load.deliveries.unique,
      lost: load.deliveries.lost,
      duplicates: load.deliveries.duplicates,
      all_arrived: load.allArrived,
      anomalies: {
        misrouted: load.deliveries.misrouted,
        unexpected_closes: load.deliveries.unexpectedCloses,
        http_errors: load.deliveries.httpErrors,
        socket_errors: load.deliveries.socketErrors,
        other_events: load.deliveries.otherEvents,
      },
    },
    posts: {
      posted: load.comments.posted,
      failed: load.comments.failed,
      latency_ms: load.postLatencyMs,
      achieved_rate_per_s: load.postRatePerS,
    },
    subscribers: {
      connected: load.subscribers.connected,
      failed: load.subscribers.failed,
      per_instance: perInstance,
    },
    rss_per_stream_kb: instances.map((_, i) =>
      perInstance[i]! > 0 ? round((rssIdle[i]! - rssBefore[i]!) / perInstance[i]!, 2) : NaN,
    ),
    cpu_post_window: cpuReport(postWindow),
    cost: costReport(postWindow, load.comments.posted, load.deliveries.unique),
  };
}

export type NchanResult = Awaited<ReturnType<typeof benchNchan>>;

/** One line of an Nchan run's own figures (the comparison table has the rest). */
export function nchanLine(r: NchanResult): string {
  const l = r.latency_ms;
  const d = r.deliveries;
  return (
    `p50 ${l.p50} p90 ${l.p90} p99 ${l.p99} max ${l.max} ms; expected ${d.expected}, ` +
    `unique ${d.unique}, lost ${d.lost}, duplicates ${d.duplicates}; ${r.posts.posted} published ` +
    `(${r.posts.achieved_rate_per_s}/s); RSS/stream ${JSON.stringify(r.rss_per_stream_kb)} KB; ` +
    `machine ${r.cpu_post_window.machine_busy_pct_of_all_cores}% busy; p50/p99 by fifth ` +
    fifths(r.latency_by_fifth_ms)
  );
}
