import http from 'node:http';
import { nowMs, sleep } from './clock';
import { roundSummary, summarize, round, type Summary } from './stats';
import { loopDelayMonitor, type GeneratorLoopDelays, type LoopDelay } from './loop-delay';
import { LocalGroup, WorkerGroup, type SubscriberGroup } from './subscriber-group';
import { PROTOCOLS, type ServerKind } from './protocol';
import type { BenchOptions } from './options';
import type { PoolPlan, PoolResult, Target } from './subscriber-pool';

/** The post window's comments are split in this many slices for latency over time. */
const LATENCY_SLICES = 5;

/** One measured run against already running servers (set-up and tear-down are the caller's). */
export interface LoadConfig {
  runTag: string;
  trackIds: string[];
  /** Where subscribers connect; subscribers are spread evenly over them. */
  subscriberTargets: Target[];
  /** Where comments are posted, alternating. Index i is the same server as subscriberTargets[i] when not proxied. */
  postTargets: Target[];
  /** JWT per user slot; subscriber i uses slot floor(i / subscribersPerUser), comment k slot k % tokens.length. */
  tokens: string[];
  subscribers: number;
  subscribersPerUser: number;
  comments: number;
  /** Comments per second (open loop: a slow answer does not delay the next POST). */
  rate: number;
  /** 0: subscribers in this process; n: in n forked workers. */
  workers: number;
  connectConcurrency: number;
  /** How long to wait for missing deliveries after the last POST answered. */
  settleMs: number;
  reconnectDelayMs: number;
  /** The server's protocol (default: this service's). */
  server?: ServerKind;
  /** Called at the phase boundaries (RSS and CPU sampling); awaited. */
  onPhase?: (phase: LoadPhase, info: PhaseInfo) => Promise<void>;
  /** Lets the caller close the subscriber groups if the run is interrupted. */
  registerCleanup?: (name: string, fn: () => Promise<unknown>) => void;
  log?: (line: string) => void;
}

export type LoadPhase = 'before-connect' | 'connected' | 'post-start' | 'settled';
/** The load both servers get from the options (`--compare nchan` runs the same shape). */
export function loadShape(opts: BenchOptions) {
  return {
    subscribers: opts.subscribers,
    subscribersPerUser: opts.subscribersPerUser,
    comments: opts.comments,
    rate: opts.rate,
    workers: opts.workers,
    connectConcurrency: opts.connectConcurrency,
    settleMs: opts.settleMs,
    reconnectDelayMs: 500,
  } satisfies Partial<LoadConfig>;
}

export interface PhaseInfo {
  /** Process ids that run subscriber sockets. */
  generatorPids: number[];
}

export interface LoadResult {
  subscribers: {
    requested: number;
    connected: number;
    failed: number;
    perTarget: number[];
    connectPhaseMs: number;
    connectMs: Summary;
  };
  comments: { requested: number; posted: number; failed: Record<string, number> };
  deliveries: {
    expected: number;
    received: number;
    unique: number;
    lost: number;
    duplicates: number;
    /** Deliveries for comments whose POST did not answer 201. */
    unexpected: number;
    misrouted: number;
    idRegressions: number;
    foreign: number;
    otherEvents: Record<string, number>;
    unexpectedCloses: number;
    reconnects: number;
    httpErrors: Record<string, { count: number; sample: string }>;
    socketErrors: Record<string, number>;
  };
  /** ms from just before the POST to the subscriber's read of the frame. */
  latencyMs: Summary;
  /** p50/p99 of the comments in each fifth of the post window, in post order. */
  latencyBySliceMs: { p50: number; p99: number }[];
  /** Same, split by whether the subscriber is on the replica that took the POST. */
  latencySameTargetMs: Summary;
  latencyOtherTargetMs: Summary;
  /**
   * ms from the POST's response to the delivery (negative: the frame came
   * first). Separates fan-out from the time the POST itself took.
   */
  latencyAfterResponseMs: Summary;
  /**
   * The generator's event-loop delay from the first POST until the deliveries settled (its
   * main thread and each subscriber worker), under the names the results report it by.
   */
  generatorLoopDelays: GeneratorLoopDelays;
  /** Unique deliveries received by the subscribers of each target. */
  uniquePerTarget: number[];
  postLatencyMs: Summary;
  /** Actual POST rate achieved (first to last POST start). */
  postRatePerS: number;
  postWindowMs: number;
  /** Unique deliveries that arrived between the first and the last POST start, per second. */
  deliveriesPerSPostWindow: number;
  /** All unique deliveries over first POST start → last delivery. */
  deliveriesPerSOverall: number;
  settleMs: number;
  allArrived: boolean;
  clock: { offsetMsMaxAbs: number; rttMsMax: number };
}

interface PostOutcome {
  start: number;
  end: number;
  status: number;
  body: string;
}

function postComment(
  target: Target,
  agent: http.Agent,
  path: string,
  token: string,
  body: string,
  started: (at: number) => void,
): Promise<PostOutcome> {
  return new Promise((resolve) => {
    const start = nowMs();
    started(start);
    const req = http.request(
      {
        host: target.host,
        port: target.port,
        method: 'POST',
        path,
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${token}`,
        },
        timeout: 15000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          if (text.length < 2000) text += d;
        });
        res.on('end', () =>
          resolve({ start, end: nowMs(), status: res.statusCode ?? 0, body: text }),
        );
        res.on('error', () => resolve({ start, end: nowMs(), status: -1, body: 'response error' }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ start, end: nowMs(), status: -1, body: err.message }));
    req.end(body);
  });
}

export async function runLoad(cfg: LoadConfig): Promise<LoadResult> {
  const log = cfg.log ?? (() => {});
  const protocol = PROTOCOLS[cfg.server ?? 'trackcomments'];
  const T = cfg.trackIds.length;
  const nTargets = cfg.subscriberTargets.length;
  const trackOfSub = (i: number) => i % T;
  // Consecutive blocks of T subscribers alternate targets, so every track has subscribers on each.
  const targetOfSub = (i: number) => Math.floor(i / T) % nTargets;
  const userOfSub = (i: number) => Math.floor(i / cfg.subscribersPerUser) % cfg.tokens.length;

  const nGroups = Math.max(1, cfg.workers);
  const plans: PoolPlan[] = Array.from({ length: nGroups }, () => ({
    runTag: cfg.runTag,
    trackIds: cfg.trackIds,
    targets: cfg.subscriberTargets,
    tokens: cfg.tokens,
    subscribers: [],
    connectConcurrency: Math.max(1, Math.ceil(cfg.connectConcurrency / nGroups)),
    reconnectDelayMs: cfg.reconnectDelayMs,
    server: cfg.server,
  }));
  const perTarget = new Array<number>(nTargets).fill(0);
  for (let i = 0; i < cfg.subscribers; i++) {
    plans[i % nGroups]!.subscribers.push([i, trackOfSub(i), targetOfSub(i), userOfSub(i)]);
    perTarget[targetOfSub(i)]!++;
  }

  const groups: SubscriberGroup[] = [];
  const agents = cfg.postTargets.map(() => new http.Agent({ keepAlive: true, maxSockets: 64 }));
  try {
    for (const plan of plans) {
      groups.push(cfg.workers === 0 ? new LocalGroup(plan) : await WorkerGroup.start(plan));
    }
    cfg.registerCleanup?.('subscribers', () =>
      Promise.all(groups.map((g) => g.close().catch(() => {}))),
    );
    const clocks = await Promise.all(groups.map((g) => g.clockCheck()));
    const clock = {
      offsetMsMaxAbs: Math.max(...clocks.map((c) => Math.abs(c.offsetMs))),
      rttMsMax: Math.max(...clocks.map((c) => c.rttMs)),
    };
    const info: PhaseInfo = {
      generatorPids: [...new Set([process.pid, ...groups.map((g) => g.pid)])],
    };
    await cfg.onPhase?.('before-connect', info);

    // --- connect ---
    log(`opening ${cfg.subscribers} subscribers over ${T} tracks (${nGroups} group(s))`);
    const connectStart = nowMs();
    const progressLog = setInterval(() => {
      const p = groups.map((g) => g.progress());
      log(
        `  connected ${p.reduce((a, x) => a + x.connected, 0)}/${cfg.subscribers}` +
          `, failed ${p.reduce((a, x) => a + x.failedConnects, 0)}`,
      );
    }, 2000);
    try {
      await Promise.all(groups.map((g) => g.open()));
    } finally {
      clearInterval(progressLog);
    }
    const connectPhaseMs = nowMs() - connectStart;
    const afterOpen = groups.map((g) => g.progress());
    const connected = afterOpen.reduce((a, p) => a + p.connected, 0);
    const failed = afterOpen.reduce((a, p) => a + p.failedConnects, 0);
    log(
      `connected ${connected}/${cfg.subscribers} in ${connectPhaseMs.toFixed(0)} ms, ${failed} failed`,
    );
    await cfg.onPhase?.('connected', info);

    // Subscribers per track that are connected now: what each comment should reach.
    const openResults = await Promise.all(groups.map((g) => g.result()));
    const liveOnTrack = new Array<number>(T).fill(0);
    // A subscriber is live when it has a connect time.
    plans.forEach((plan, gi) => {
      const cm = openResults[gi]!.connectMs;
      plan.subscribers.forEach(([, track], slot) => {
        if (!Number.isNaN(cm[slot]!)) liveOnTrack[track]!++;
      });
    });
    const connectTimes: number[] = [];
    for (const r of openResults)
      for (const v of r.connectMs) if (!Number.isNaN(v)) connectTimes.push(v);

    // --- post ---
    const C = cfg.comments;
    const postStart = new Float64Array(C).fill(NaN);
    const outcomes: (PostOutcome | undefined)[] = new Array(C);
    // Consecutive comments alternate targets; with an even track count the pattern flips
    // every round so that each track also gets comments through every target.
    const postTargetOf = (k: number) =>
      (k + (T % 2 === 0 ? Math.floor(k / T) : 0)) % cfg.postTargets.length;
    await cfg.onPhase?.('post-start', info);
    // The generator's own stalls delay both the POSTs and the arrivals it timestamps, on
    // either server: its main thread and each subscriber worker (--workers) are read.
    const generatorLoop = loopDelayMonitor();
    await Promise.all(groups.map((g) => g.startLoopDelay()));
    log(`posting ${C} comments at ${cfg.rate}/s`);
    const inflight: Promise<void>[] = [];
    const t0 = nowMs() + 5;
    const interval = 1000 / cfg.rate;
    await new Promise<void>((resolve) => {
      let k = 0;
      const tick = () => {
        while (k < C && t0 + k * interval <= nowMs()) {
          const n = k++;
          const track = n % T;
          const target = postTargetOf(n);
          const trackId = cfg.trackIds[track]!;
          const body = protocol.postBody(cfg.runTag, n, trackId, track);
          inflight.push(
            postComment(
              cfg.postTargets[target]!,
              agents[target]!,
              protocol.postPath(trackId),
              cfg.tokens[n % cfg.tokens.length]!,
              body,
              (at) => (postStart[n] = at),
            ).then((o) => {
              outcomes[n] = o;
            }),
          );
        }
        if (k >= C) return resolve();
        setTimeout(tick, Math.max(0, t0 + k * interval - nowMs()));
      };
      tick();
    });
    const lastPostStart = postStart[C - 1] ?? NaN;
    await Promise.all(inflight);
    const postsDone = nowMs();

    let expected = 0;
    const failedPosts: Record<string, number> = {};
    let posted = 0;
    for (let k = 0; k < C; k++) {
      const o = outcomes[k]!;
      if (protocol.accepted(o.status)) {
        posted++;
        expected += liveOnTrack[k % T]!;
      } else {
        const key = `${o.status} ${o.body.slice(0, 160)}`;
        failedPosts[key] = (failedPosts[key] ?? 0) + 1;
      }
    }

    // --- settle ---
    let allArrived = false;
    for (;;) {
      const unique = groups.reduce((a, g) => a + g.progress().unique, 0);
      if (unique >= expected) {
        allArrived = unique === expected;
        break;
      }
      if (nowMs() - postsDone > cfg.settleMs) break;
      await sleep(20);
    }
    const settleMs = nowMs() - postsDone;
    const generatorLoopDelay = generatorLoop.read();
    const workerLoopDelays = (await Promise.all(groups.map((g) => g.loopDelay()))).filter(
      (d): d is LoopDelay => d !== null,
    );
    const results: PoolResult[] = await Promise.all(groups.map((g) => g.result()));
    if (!allArrived) {
      const unique = results.reduce((a, r) => a + r.unique, 0);
      allArrived = unique === expected;
    }
    await cfg.onPhase?.('settled', info);

    // --- accounting ---
    const firstPostStart = postStart[0]!;
    const latencies: number[] = [];
    const same: number[] = [];
    const other: number[] = [];
    const afterResponse: number[] = [];
    // By fifth of the comments in post order: a tail only at the start is a cold start.
    const bySlice: number[][] = Array.from({ length: LATENCY_SLICES }, () => []);
    let unexpected = 0;
    let inWindow = 0;
    let lastArrival = firstPostStart;
    const uniquePerTarget = new Array<number>(nTargets).fill(0);
    for (const r of results) {
      for (let i = 0; i < r.deliveryComment.length; i++) {
        const k = r.deliveryComment[i]!;
        const at = r.deliveryAt[i]!;
        const o = k >= 0 && k < C ? outcomes[k] : undefined;
        if (!o || !protocol.accepted(o.status)) {
          unexpected++;
          continue;
        }
        const lat = at - postStart[k]!;
        latencies.push(lat);
        bySlice[Math.min(LATENCY_SLICES - 1, Math.floor((k * LATENCY_SLICES) / C))]!.push(lat);
        afterResponse.push(at - o.end);
        const subTarget = targetOfSub(r.deliverySubscriber[i]!);
        uniquePerTarget[subTarget]!++;
        // Only meaningful when subscriber and poster targets are the same servers (no proxy).
        (subTarget === postTargetOf(k) ? same : other).push(lat);
        if (at <= lastPostStart) inWindow++;
        if (at > lastArrival) lastArrival = at;
      }
    }
    type CountKey = 'duplicates' | 'misrouted' | 'idRegressions' | 'foreign' | 'unexpectedCloses';
    const sum = (key: CountKey | 'reconnects' | 'unique') =>
      results.reduce((a, r) => a + r[key], 0);
    const mergeCounts = (pick: (r: PoolResult) => Record<string, number>) => {
      const out: Record<string, number> = {};
      for (const r of results)
        for (const [k, v] of Object.entries(pick(r))) out[k] = (out[k] ?? 0) + v;
      return out;
    };
    const httpErrors: Record<string, { count: number; sample: string }> = {};
    for (const r of results) {
      for (const [k, v] of Object.entries(r.httpErrors)) {
        const e = (httpErrors[k] ??= { count: 0, sample: v.sample });
        e.count += v.count;
      }
    }
    const unique = sum('unique') - unexpected;
    const duplicates = sum('duplicates');
    const postWindowMs = lastPostStart - firstPostStart;
    const postLat: number[] = [];
    for (const o of outcomes) if (o) postLat.push(o.end - o.start);

    return {
      subscribers: {
        requested: cfg.subscribers,
        connected,
        failed,
        perTarget,
        connectPhaseMs: round(connectPhaseMs, 0),
        connectMs: roundSummary(summarize(connectTimes), 1),
      },
      comments: { requested: C, posted, failed: failedPosts },
      deliveries: {
        expected,
        received: unique + duplicates,
        unique,
        lost: expected - unique,
        duplicates,
        unexpected,
        misrouted: sum('misrouted'),
        idRegressions: sum('idRegressions'),
        foreign: sum('foreign'),
        otherEvents: mergeCounts((r) => r.otherEvents),
        unexpectedCloses: sum('unexpectedCloses'),
        reconnects: sum('reconnects'),
        httpErrors,
        socketErrors: mergeCounts((r) => r.socketErrors),
      },
      latencyMs: roundSummary(summarize(latencies)),
      latencyBySliceMs: bySlice.map((v) => {
        const { p50, p99 } = roundSummary(summarize(v));
        return { p50, p99 };
      }),
      latencySameTargetMs: roundSummary(summarize(same)),
      latencyOtherTargetMs: roundSummary(summarize(other)),
      latencyAfterResponseMs: roundSummary(summarize(afterResponse)),
      uniquePerTarget,
      postLatencyMs: roundSummary(summarize(postLat)),
      postRatePerS: round(C > 1 ? ((C - 1) * 1000) / postWindowMs : NaN, 1),
      postWindowMs: round(postWindowMs, 1),
      deliveriesPerSPostWindow: round(postWindowMs > 0 ? (inWindow * 1000) / postWindowMs : NaN, 0),
      deliveriesPerSOverall: round(
        lastArrival > firstPostStart ? (unique * 1000) / (lastArrival - firstPostStart) : NaN,
        0,
      ),
      settleMs: round(settleMs, 0),
      generatorLoopDelays: {
        generator_event_loop_delay_post_window: generatorLoopDelay,
        generator_workers_event_loop_delay_post_window: workerLoopDelays,
      },
      allArrived,
      clock: { offsetMsMaxAbs: round(clock.offsetMsMaxAbs, 4), rttMsMax: round(clock.rttMsMax, 3) },
    };
  } finally {
    await Promise.all(groups.map((g) => g.close().catch(() => {})));
    for (const a of agents) a.destroy();
  }
}
