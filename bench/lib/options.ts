/** Bench options: flags override BENCH_* environment variables override defaults. */
export interface BenchOptions {
  subscribers: number;
  tracks: number;
  comments: number;
  rate: number;
  viaNginx: boolean;
  /**
   * Subscriber processes; 0 = in the posting process. Default 1: the arrivals are parsed off
   * the posting thread, so a burst of frames delays neither a POST nor its timestamp (in
   * process, 2,000 subscribers on one track stalled the generator's loop 100–260 ms).
   */
  workers: number;
  subscribersPerUser: number;
  /**
   * Albums the tracks are spread over, each with its own creator. Every comment also notifies
   * its album's creator (a `mention` on the creator's user stream): with 1 album, every
   * comment of the run appends to that one stream.
   */
  albums: number;
  connectConcurrency: number;
  settleMs: number;
  /** Quiet time after every subscriber connected, before RSS is read. */
  idleMs: number;
  /** Warm-up POSTs per replica (to a track nobody watches) before anything is measured. */
  warmup: number;
  outDir: string;
  label: string;
  /** When set, replicas run with --cpu-prof into this directory (written when they stop). */
  profileDir: string;
  /** Extra NODE_OPTIONS for the replicas (e.g. V8 heap flags), to compare settings. */
  replicaNodeOptions: string;
  /** Also print the top self-time functions per replica (profiles into outDir/profiles unless profileDir). */
  profile: boolean;
  /** '' or 'nchan': alternate each run of ours with one of that server under the same load. */
  compare: string;
  /** Runs (pairs with --compare), one after the other in this process. */
  runs: number;
  /**
   * Loads per start of our replicas: the first pass is the run's figures; later passes run the
   * same load again on the same (now warm) replicas, to compare the first run after a start.
   */
  passes: number;
  /** Before each later pass, restart the replicas (same ports, database, bus): a deploy. */
  restartReplicas: boolean;
}

export const DEFAULTS: BenchOptions = {
  subscribers: 10000,
  tracks: 100,
  comments: 1000,
  rate: 200,
  viaNginx: false,
  workers: 1,
  subscribersPerUser: 10,
  albums: 1,
  connectConcurrency: 200,
  settleMs: 5000,
  idleMs: 2000,
  warmup: 50,
  outDir: 'bench-results',
  label: '',
  profileDir: '',
  replicaNodeOptions: '',
  profile: false,
  compare: '',
  runs: 1,
  passes: 1,
  restartReplicas: false,
};

export const SMOKE: Partial<BenchOptions> = { subscribers: 200, tracks: 4, comments: 50, rate: 50 };

interface Spec {
  key: keyof BenchOptions;
  kind: 'int' | 'bool' | 'string';
  min?: number;
  help: string;
}

const SPECS: Record<string, Spec> = {
  '--subscribers': {
    key: 'subscribers',
    kind: 'int',
    min: 1,
    help: 'SSE subscribers (BENCH_SUBSCRIBERS)',
  },
  '--tracks': { key: 'tracks', kind: 'int', min: 1, help: 'tracks the subscribers spread over' },
  '--comments': { key: 'comments', kind: 'int', min: 1, help: 'comments to post' },
  '--rate': { key: 'rate', kind: 'int', min: 1, help: 'comments per second (open loop)' },
  '--via-nginx': { key: 'viaNginx', kind: 'bool', help: 'connect and post through nginx' },
  '--workers': {
    key: 'workers',
    kind: 'int',
    min: 0,
    help: 'subscriber processes (0 = in the posting process)',
  },
  '--subscribers-per-user': {
    key: 'subscribersPerUser',
    kind: 'int',
    min: 1,
    help: 'streams sharing one user',
  },
  '--albums': {
    key: 'albums',
    kind: 'int',
    min: 1,
    help: 'albums (each its own creator) the tracks are spread over; comments notify the creator',
  },
  '--connect-concurrency': {
    key: 'connectConcurrency',
    kind: 'int',
    min: 1,
    help: 'streams opened at once',
  },
  '--settle-ms': {
    key: 'settleMs',
    kind: 'int',
    min: 0,
    help: 'wait for missing deliveries after the last POST',
  },
  '--idle-ms': { key: 'idleMs', kind: 'int', min: 0, help: 'idle time before the RSS reading' },
  '--warmup': { key: 'warmup', kind: 'int', min: 0, help: 'warm-up POSTs per replica' },
  '--out': { key: 'outDir', kind: 'string', help: 'results directory' },
  '--label': { key: 'label', kind: 'string', help: 'name for this run in the results file' },
  '--profile-dir': {
    key: 'profileDir',
    kind: 'string',
    help: 'write V8 CPU profiles of the replicas here, one per pass (post window)',
  },
  '--profile': {
    key: 'profile',
    kind: 'bool',
    help: 'profile the replicas and print where their time went',
  },
  '--compare': {
    key: 'compare',
    kind: 'string',
    help: '"nchan": alternate with nginx+Nchan under the same load, print ratios',
  },
  '--runs': { key: 'runs', kind: 'int', min: 1, help: 'runs (ours, nchan, ours, nchan ...)' },
  '--passes': {
    key: 'passes',
    kind: 'int',
    min: 1,
    help: 'loads per start of our replicas (later ones: same replicas, warm)',
  },
  '--restart-replicas': {
    key: 'restartReplicas',
    kind: 'bool',
    help: 'with --passes: new replica processes before each later pass (a deploy)',
  },
  '--replica-node-options': {
    key: 'replicaNodeOptions',
    kind: 'string',
    help: 'NODE_OPTIONS for the replicas, e.g. "--max-semi-space-size=4"',
  },
};

const envName = (flag: string) => 'BENCH_' + flag.slice(2).replace(/-/g, '_').toUpperCase();

export function usage(): string {
  const lines = Object.entries(SPECS).map(
    ([flag, s]) =>
      `  ${(flag + (s.kind === 'bool' ? '' : ' <v>')).padEnd(28)} ${s.help} [${String(DEFAULTS[s.key])}]`,
  );
  return [
    'usage: npm run bench -- [options]   (each option also as env BENCH_<NAME>, e.g. BENCH_RATE=100)',
    '  --smoke                      200 subscribers, 4 tracks, 50 comments at 50/s',
    ...lines,
  ].join('\n');
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): BenchOptions {
  const opts: BenchOptions = { ...DEFAULTS };
  const set = (flag: string, spec: Spec, raw: string) => {
    if (spec.kind === 'bool') {
      (opts[spec.key] as boolean) = raw === '' || raw === '1' || raw === 'true';
    } else if (spec.kind === 'int') {
      const n = Number(raw);
      if (!Number.isInteger(n) || n < (spec.min ?? 0)) {
        throw new Error(
          `${flag} must be an integer >= ${spec.min ?? 0}, got ${JSON.stringify(raw)}`,
        );
      }
      (opts[spec.key] as number) = n;
    } else {
      (opts[spec.key] as string) = raw;
    }
  };
  if (env.BENCH_SMOKE === '1' || argv.includes('--smoke')) Object.assign(opts, SMOKE);
  for (const [flag, spec] of Object.entries(SPECS)) {
    const v = env[envName(flag)];
    if (v !== undefined && v !== '') set(flag, spec, v);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--smoke') continue;
    const [flag, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg, undefined];
    const spec = SPECS[flag!];
    if (!spec) throw new Error(`unknown option ${arg}\n${usage()}`);
    if (spec.kind === 'bool') set(flag!, spec, inline ?? '');
    else {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      set(flag!, spec, v);
    }
  }
  // Creators are users 1..albums; commenters start at 1000.
  if (opts.albums > 999) throw new Error(`--albums must be at most 999, got ${opts.albums}`);
  if (opts.compare !== '' && opts.compare !== 'nchan') {
    throw new Error(`--compare knows only "nchan", got ${JSON.stringify(opts.compare)}`);
  }
  return opts;
}
