/**
 * `--compare nchan`: the table of alternating runs (ours, nchan, ours, nchan ...) with the
 * ratios ours / Nchan of each pair and their median. Absolute figures on a shared 2-core
 * machine move 2x from one hour to the next; ratios of neighbouring runs are the figure.
 */
import { isGenerator, type CostReport } from './cost';
import { round } from './stats';
import { alignedColumns } from './table';
import { generatorLoopMaxMs, type GeneratorLoopDelays } from './loop-delay';

/** What both servers' results have in common (our result and NchanResult both fit). */
export interface ComparableRun extends GeneratorLoopDelays {
  latency_ms: { p50: number; p90: number; p99: number; max: number };
  /** p50/p99 of each fifth of the comments, in post order. */
  latency_by_fifth_ms: { p50: number; p99: number }[];
  deliveries: { expected: number; unique: number; lost: number; duplicates: number };
  posts: { posted: number };
  cpu_post_window: {
    wall_ms: number;
    machine_busy_pct_of_all_cores: number;
    processes: Record<string, { cpu_ms: number }>;
  };
  cost: CostReport;
}

export interface ComparePair {
  ours: ComparableRun;
  nchan: ComparableRun;
}

/** Servers' CPU (every group but the generator) as % of one core over the post window. */
export function serversPct(r: ComparableRun): number {
  const c = r.cpu_post_window;
  let ms = 0;
  for (const [name, p] of Object.entries(c.processes)) if (!isGenerator(name)) ms += p.cpu_ms;
  return round((ms * 100) / c.wall_ms, 1);
}

/** Generator CPU µs per delivered event (its own cost, measured in both runs). */
export function generatorUsPerDelivery(r: ComparableRun): number {
  let us = 0;
  for (const [name, g] of Object.entries(r.cost.groups)) {
    if (isGenerator(name)) us += g.us_per_delivery;
  }
  return round(us, 2);
}

const ratio = (a: number, b: number) => (b > 0 ? round(a / b, 2) : NaN);
const median = (v: number[]) => {
  const s = v.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : round((s[m - 1]! + s[m]!) / 2, 2);
};

export interface PairRatios {
  p50: number;
  p99: number;
  /**
   * p99 of the first fifth of the posts: where a cold start shows. Set against the same ratio
   * of the whole run, it tells whether the start is worse than the rest on our side only.
   */
  first_fifth_p99: number;
  /** Servers' CPU µs per delivered event. */
  cpu_per_delivery: number;
  machine_busy: number;
}

const firstFifthP99 = (r: ComparableRun) => r.latency_by_fifth_ms[0]?.p99 ?? NaN;

export function pairRatios(p: ComparePair): PairRatios {
  return {
    p50: ratio(p.ours.latency_ms.p50, p.nchan.latency_ms.p50),
    p99: ratio(p.ours.latency_ms.p99, p.nchan.latency_ms.p99),
    first_fifth_p99: ratio(firstFifthP99(p.ours), firstFifthP99(p.nchan)),
    cpu_per_delivery: ratio(
      p.ours.cost.servers_total.us_per_delivery,
      p.nchan.cost.servers_total.us_per_delivery,
    ),
    machine_busy: ratio(
      p.ours.cpu_post_window.machine_busy_pct_of_all_cores,
      p.nchan.cpu_post_window.machine_busy_pct_of_all_cores,
    ),
  };
}

export function medianRatios(pairs: ComparePair[]): PairRatios {
  const all = pairs.map(pairRatios);
  return {
    p50: median(all.map((r) => r.p50)),
    p99: median(all.map((r) => r.p99)),
    first_fifth_p99: median(all.map((r) => r.first_fifth_p99)),
    cpu_per_delivery: median(all.map((r) => r.cpu_per_delivery)),
    machine_busy: median(all.map((r) => r.machine_busy)),
  };
}

/** The comparison table: one line per run, one ratio line per pair, then the medians. */
export function compareTable(pairs: ComparePair[]): string {
  const header = [
    'run',
    'server',
    'p50 ms',
    'p90 ms',
    'p99 ms',
    'max ms',
    'p99 1st fifth',
    'lost',
    'dup',
    'busy %',
    'servers %core',
    'servers µs/deliv',
    'gen µs/deliv',
    'gen loop max ms',
  ];
  const rows: string[][] = [header];
  const line = (i: number, name: string, r: ComparableRun) => [
    String(i + 1),
    name,
    String(r.latency_ms.p50),
    String(r.latency_ms.p90),
    String(r.latency_ms.p99),
    String(r.latency_ms.max),
    String(firstFifthP99(r)),
    String(r.deliveries.lost),
    String(r.deliveries.duplicates),
    String(r.cpu_post_window.machine_busy_pct_of_all_cores),
    String(serversPct(r)),
    String(r.cost.servers_total.us_per_delivery),
    String(generatorUsPerDelivery(r)),
    String(generatorLoopMaxMs(r)),
  ];
  const ratioLine = (label: string, x: PairRatios) => [
    '',
    label,
    `${x.p50}x`,
    '',
    `${x.p99}x`,
    '',
    `${x.first_fifth_p99}x`,
    '',
    '',
    `${x.machine_busy}x`,
    '',
    `${x.cpu_per_delivery}x`,
    '',
    '',
  ];
  pairs.forEach((p, i) => {
    rows.push(line(i, 'ours', p.ours), line(i, 'nchan', p.nchan));
    rows.push(ratioLine('ours/nchan', pairRatios(p)));
  });
  if (pairs.length > 1) rows.push(ratioLine('median ratio', medianRatios(pairs)));
  return alignedColumns(rows, 'start');
}
