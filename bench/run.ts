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
import { startNginx, type RunningNginx } from '../harness/nginx';
import { startRedisServer } from '../harness/redis-server';
import { startReplica, TEST_ADMIN_TOKEN, TEST_AUTH_SECRET, type Replica } from '../harness/replica';
import { createTestDatabase } from '../harness/test-db';
import { nowMs, sleep } from './lib/clock';
import { loadShape, runLoad, type LoadPhase, type LoadResult } from './lib/load';
import { parseOptions, usage, type BenchOptions } from './lib/options';
import { findNchanModule } from '../harness/nchan';
import { compareTable, medianRatios, pairRatios, type ComparePair } from './lib/compare';
import { costReport } from './lib/cost';
import { benchNchan, nchanLine } from './lib/nchan-bench';
import { childPids, cpuBetween, findPids, snapshotCpu, type CpuSnapshot } from './lib/procstat';
import { postgresPids } from './lib/postgres-pids';
import { buildReport, type LaterPass, type PassReadings } from './lib/report';
import { Cleanup, ensureFdLimit, log, SupervisedRuns } from './lib/session';
import { gcBetween, openStreams, phaseCounters, steadyRssKb } from './lib/replica-readings';
import { generatorProfilePath, SelfProfiler } from './lib/profile';
import { printProfiles, writeResult } from './lib/results';
import { seedCatalog, warmUp } from './lib/seed';
import { warmGenerator } from './lib/generator-warmup';
import { round } from './lib/stats';
import { table } from './lib/table';
import type { Target } from './lib/subscriber-pool';

const ROOT = path.resolve(__dirname, '..');
const REPLICAS = 2;
/** Waited after starting the profilers, before the posts: the start stalls a process. */
const PROFILER_START_SETTLE_MS = 1000;
/** Started replicas, for their output when the run fails. */
const startedReplicas: Replica[] = [];

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

  // --- seed and warm-up ---
  const userIds = Array.from({ length: users }, (_, i) => 1000 + i);
  const trackIds = Array.from({ length: opts.tracks }, (_, t) => `bench-track-${t}`);
  const warmupTrack = 'bench-warmup';
  log(`seeding ${users + opts.albums} users, ${opts.albums} album(s), ${opts.tracks + 1} tracks`);
  const tokens = await seedCatalog(
    replicas[0]!.url,
    userIds,
    [...trackIds, warmupTrack],
    opts.albums,
  );

  const direct: Target[] = replicas.map((r) => ({ host: '127.0.0.1', port: r.port }));
  const viaProxy: Target[] | undefined = nginx
    ? [{ host: '127.0.0.1', port: nginx.port }]
    : undefined;
  // First requests pay for lazy loading and JIT; keep them out of the figures.
  const warmUpReplicas = async () => {
    if (opts.warmup === 0) return;
    log(`warm-up: ${opts.warmup} POSTs and one stream per replica`);
    await warmUp(replicas, direct, tokens, warmupTrack, opts.warmup);
  };
  await warmUpReplicas();

  // --- measurement hooks ---
  const pgPids = await postgresPids(db.url, cleanup);
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

  const generatorProfile = new SelfProfiler(generatorProfilePath(profileDir ?? '.'));
  const runPass = async (pass: number): Promise<{ load: LoadResult; at: PassReadings }> => {
    const at: PassReadings = {
      rssBefore: [],
      rssIdle: [],
      streamsByMetrics: [],
      countersAt: {},
      snaps: {},
    };
    const onPhase = async (phase: LoadPhase, info: { generatorPids: number[] }) => {
      generatorPids = info.generatorPids;
      if (phase === 'before-connect') {
        // Let the warm-up's (or the previous pass's) garbage settle as the idle reading will.
        await sleep(opts.idleMs);
        for (const r of replicas) at.rssBefore.push(await steadyRssKb(r.pid));
        at.snaps['before-connect'] = await snapshot();
      } else if (phase === 'connected') {
        at.snaps.connected = await snapshot();
        log(`idle ${opts.idleMs} ms, then reading RSS`);
        await sleep(opts.idleMs);
        at.idleEnd = await snapshot();
        for (const r of replicas) at.rssIdle.push(await steadyRssKb(r.pid));
        for (const r of replicas) at.streamsByMetrics.push(await openStreams(r));
        // The replicas' profiler (--profile-dir) covers each pass's post window; the first
        // pass's generator too (its subscriber sockets and the poster). Starting V8's
        // profiler stalls its process for ~200 ms, so it starts here, after the idle
        // readings, and the posts wait until that has passed.
        if (profileDir) {
          for (const r of replicas) process.kill(r.pid, 'SIGUSR2');
          if (pass === 1) generatorProfile.start();
          log(
            `profilers started; the posts wait ${PROFILER_START_SETTLE_MS} ms for their start's stall`,
          );
          await sleep(PROFILER_START_SETTLE_MS);
        }
      } else {
        at.snaps[phase] = await snapshot();
        at.countersAt[phase] = await Promise.all(replicas.map(phaseCounters));
        if (profileDir && phase === 'settled') {
          for (const r of replicas) process.kill(r.pid, 'SIGUSR2');
          if (pass === 1) await generatorProfile.stop();
        }
      }
    };
    const load = await runLoad({
      runTag: pass === 1 ? runTag : `${runTag}p${pass}`,
      trackIds,
      subscriberTargets: viaProxy ?? direct,
      postTargets: viaProxy ?? direct,
      tokens,
      ...loadShape(opts),
      onPhase,
      registerCleanup: (name, fn) => cleanup.add(name, fn),
      log,
    });
    return { load, at };
  };
  const gcOfPass = (at: PassReadings) =>
    replicas.map((_, i) =>
      gcBetween(at.countersAt['post-start']?.[i]?.gc, at.countersAt.settled?.[i]?.gc),
    );

  const loopDelayOfPass = (at: PassReadings) =>
    replicas.map((_, i) => at.countersAt.settled?.[i]?.loopDelay ?? null);

  // --- run ---
  const { load, at: first } = await runPass(1);
  const gcFirstPass = gcOfPass(first);
  const loopDelayFirstPass = loopDelayOfPass(first);

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
      await warmUpReplicas();
    } else {
      log(`pass ${pass}/${opts.passes}: the same load on the same replicas`);
    }
    const { load: again, at } = await runPass(pass);
    const window = cpuBetween(at.snaps['post-start']!, at.snaps.settled!);
    laterPasses.push({
      latency_ms: again.latencyMs,
      latency_by_fifth_ms: again.latencyBySliceMs,
      post_latency_ms: again.postLatencyMs,
      lost: again.deliveries.lost,
      duplicates: again.deliveries.duplicates,
      cost: costReport(window, again.comments.posted, again.deliveries.unique),
      gc_post_window: gcOfPass(at),
      event_loop_delay_post_window: loopDelayOfPass(at),
      ...again.generatorLoopDelays,
      restarted: opts.restartReplicas,
    });
  }

  return buildReport({
    opts,
    startedAt,
    durationS: round((nowMs() - t0) / 1000, 1),
    replicaCount: REPLICAS,
    users,
    serverEnv,
    fdLimit,
    loadAtStart,
    viaProxy: viaProxy !== undefined,
    load,
    first,
    firstPids,
    gcFirstPass,
    loopDelayFirstPass,
    laterPasses,
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage());
    return;
  }
  const opts = parseOptions(argv, process.env);
  if (opts.profile && !opts.profileDir) opts.profileDir = path.join(opts.outDir, 'profiles');
  const runs = new SupervisedRuns();

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
    const warmedAt = Date.now();
    await warmGenerator(opts.workers);
    log(`generator warmed (fake server, 30,000 frames) in ${Date.now() - warmedAt} ms`);
    for (let run = 1; run <= opts.runs; run++) {
      if (opts.runs > 1) log(`=== run ${run}/${opts.runs}: ours ===`);
      const ours = await runs.run('ours', (c) => bench(opts, c));
      const json = writeResult(path.resolve(ROOT, opts.outDir), opts.label, 'bench', ours);
      console.log(table(ours));
      if (!compareNchan) console.log(json);
      if (opts.profileDir)
        await printProfiles(
          path.resolve(ROOT, opts.profileDir),
          ours.rss_per_stream.replicas.map((r) => r.pid),
        );
      if (!compareNchan) continue;
      log(`=== run ${run}/${opts.runs}: nchan ===`);
      const nchan = await runs.run('nchan', (c) => benchNchan(opts, c));
      writeResult(path.resolve(ROOT, opts.outDir), opts.label, 'nchan', nchan);
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
    if (runs.interrupted) return; // the signal handler cleans up and exits
    log(`failed: ${(err as Error).stack ?? String(err)}`);
    for (const r of startedReplicas) {
      const out = r.output().trim();
      if (out) log(`replica :${r.port} output (last 3000 chars):\n${out.slice(-3000)}`);
    }
    process.exitCode = 1;
  }
}

void main();
