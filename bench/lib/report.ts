/** The JSON report of one run of our service (the first pass, with later passes beside it). */
import os from 'node:os';
import { cpuReport, costReport, type CostReport } from './cost';
import type { LoadPhase, LoadResult } from './load';
import type { BenchOptions } from './options';
import { cpuBetween, type CpuSnapshot } from './procstat';
import type { GeneratorLoopDelays, LoopDelay } from './loop-delay';
import type { gcBetween, PhaseCounters } from './replica-readings';
import { round } from './stats';

/** What one pass read at its phases. Every pass waits the same way, so passes compare. */
export interface PassReadings {
  rssBefore: number[];
  rssIdle: number[];
  streamsByMetrics: (number | null)[];
  countersAt: Partial<Record<LoadPhase, PhaseCounters[]>>;
  snaps: Partial<Record<LoadPhase, CpuSnapshot>>;
  idleEnd?: CpuSnapshot;
}

interface RssReport {
  pid: number;
  streams: number;
  streams_by_metrics: number | null;
  before_kb: number;
  idle_kb: number;
  per_stream_kb: number;
}

/**
 * A later pass's figures (the run's own are the first pass's), with the generator's loop delay
 * over the pass's post window and its settling.
 */
export interface LaterPass extends GeneratorLoopDelays {
  latency_ms: LoadResult['latencyMs'];
  latency_by_fifth_ms: LoadResult['latencyBySliceMs'];
  post_latency_ms: LoadResult['postLatencyMs'];
  lost: number;
  duplicates: number;
  cost: CostReport;
  /** Replicas' GC pauses in this pass's post window (as the first pass's gc_post_window). */
  gc_post_window: ReturnType<typeof gcBetween>[];
  /** Replicas' event-loop delay in this pass's post window (and its settling). */
  event_loop_delay_post_window: (LoopDelay | null)[];
  /** Run on replicas restarted before it (--restart-replicas). */
  restarted: boolean;
}

/** What a run measured and how it was set up. */
export interface RunFacts {
  opts: BenchOptions;
  startedAt: Date;
  durationS: number;
  replicaCount: number;
  users: number;
  serverEnv: Record<string, string>;
  fdLimit: { before: number; after: number; action: string };
  loadAtStart: number[];
  /** Subscribers and POSTs went through nginx. */
  viaProxy: boolean;
  load: LoadResult;
  first: PassReadings;
  /** The first pass's replica processes (later passes may run on restarted ones). */
  firstPids: number[];
  gcFirstPass: ReturnType<typeof gcBetween>[];
  loopDelayFirstPass: (LoopDelay | null)[];
  laterPasses: LaterPass[];
}

export function buildReport(f: RunFacts) {
  const { opts, load, viaProxy } = f;
  const { rssBefore, rssIdle, streamsByMetrics, countersAt, snaps } = f.first;
  const streamsOn = (i: number): number =>
    viaProxy ? (streamsByMetrics[i] ?? NaN) : load.subscribers.perTarget[i]!;
  const rss: RssReport[] = f.firstPids.map((pid, i) => {
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
    f.firstPids.forEach((_, i) => {
      const ms = postWindow.groupsMs[`replica-${i + 1}`]!;
      perDelivery[`replica-${i + 1}`] = round(
        (ms * 1000) / Math.max(1, load.uniquePerTarget[i]!),
        1,
      );
    });
  }
  const result = {
    label: opts.label || null,
    started_at: f.startedAt.toISOString(),
    duration_s: f.durationS,
    config: {
      subscribers: opts.subscribers,
      tracks: opts.tracks,
      comments: opts.comments,
      rate_per_s: opts.rate,
      via_nginx: opts.viaNginx,
      replicas: f.replicaCount,
      subscriber_workers: opts.workers,
      users: f.users,
      subscribers_per_user: opts.subscribersPerUser,
      albums: opts.albums,
      connect_concurrency: opts.connectConcurrency,
      settle_ms: opts.settleMs,
      warmup_posts_per_replica: opts.warmup,
      server_env: f.serverEnv,
      replica_node_options: opts.replicaNodeOptions || null,
      node: process.version,
      cores: os.cpus().length,
      load_average_at_start: f.loadAtStart,
      fd_limit: f.fdLimit,
    },
    latency_ms: load.latencyMs,
    /** p50/p99 by fifth of the comments in post order (a cold start shows in the first). */
    latency_by_fifth_ms: load.latencyBySliceMs,
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
    gap_fills_post_window: f.firstPids.map((_, i) => {
      const before = countersAt['post-start']?.[i]?.gapFills;
      const after = countersAt.settled?.[i]?.gapFills;
      return before == null || after == null ? null : after - before;
    }),
    /** Replicas' GC pauses during the post window, by kind: count, total ms, pauses over 10 ms. */
    gc_post_window: f.gcFirstPass,
    /**
     * Replicas' longest and p99 event-loop delay from the first post to the settling (ms), as
     * prom-client's 10 ms monitor records it (so ~10 ms is no stall): a latency tail with a
     * short loop delay waited somewhere else (the database, the OS, the generator).
     */
    event_loop_delay_post_window: f.loopDelayFirstPass,
    ...load.generatorLoopDelays,
    cpu_connect_phase: cpuReport(connectPhase),
    /** Every stream open, nothing posted: the cost of idle streams (and of anything polling). */
    cpu_idle_with_streams: cpuReport(cpuBetween(snaps.connected!, f.first.idleEnd!)),
    /** Passes 2.. (--passes): the first pass above is the first load after the start. */
    later_passes: f.laterPasses,
    clock: {
      source: 'process.hrtime (CLOCK_MONOTONIC, system-wide)',
      worker_offset_ms_max_abs: load.clock.offsetMsMaxAbs,
      worker_ping_rtt_ms_max: load.clock.rttMsMax,
    },
  };
  return result;
}

export type BenchResult = ReturnType<typeof buildReport>;
