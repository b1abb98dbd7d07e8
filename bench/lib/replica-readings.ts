/**
 * What the bench reads off a running replica: counters from its /metrics (open streams,
 * gap fills, GC pauses by kind) and a steady RSS reading from /proc.
 */
import type { Replica } from '../../harness/replica';
import { sleep } from './clock';
import { readRssKb } from './procstat';
import { round } from './stats';
import type { LoopDelay } from './loop-delay';

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
export const openStreams = (replica: Replica) =>
  metricSum(replica, 'trackcomments_open_streams', 'kind="track"');

const GC_KINDS = ['minor', 'major', 'incremental', 'weakcb'] as const;
export type GcTotals = Record<
  (typeof GC_KINDS)[number],
  { count: number; ms: number; over_10ms: number }
>;
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

const LOOP_DELAY_METRIC = 'trackcomments_nodejs_eventloop_lag';

/**
 * prom-client's event-loop delay histogram (`monitorEventLoopDelay`) is reset by every /metrics
 * reading, so what a phase reads covers the time since the previous phase's reading: the one
 * read when the posts have settled is the post window's. Nothing else reads /metrics meanwhile.
 */
function loopDelay(text: string): LoopDelay | null {
  const max = sumOf(text, `${LOOP_DELAY_METRIC}_max_seconds`);
  const p99 = sumOf(text, `${LOOP_DELAY_METRIC}_p99_seconds`);
  if (max === null || p99 === null) return null;
  return { max_ms: round(max * 1000, 1), p99_ms: round(p99 * 1000, 1) };
}

/** What a replica's counters read at a load phase, from one /metrics reading (null: unreadable). */
export interface PhaseCounters {
  /** Gaps filled from the log (a bus message ahead of one still missing). */
  gapFills: number | null;
  gc: GcTotals | null;
  /** Event-loop delay since the previous phase's reading. */
  loopDelay: LoopDelay | null;
}

export async function phaseCounters(replica: Replica): Promise<PhaseCounters> {
  const text = await metricsText(replica);
  if (text === null) return { gapFills: null, gc: null, loopDelay: null };
  return {
    gapFills: sumOf(text, 'trackcomments_gap_fills_total'),
    gc: gcTotals(text),
    loopDelay: loopDelay(text),
  };
}

/** What happened between two GC readings, per kind (only kinds that paused). */
export function gcBetween(before: GcTotals | null | undefined, after: GcTotals | null | undefined) {
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
export async function steadyRssKb(pid: number): Promise<number> {
  const v: number[] = [];
  for (let i = 0; i < 5; i++) {
    v.push(readRssKb(pid));
    await sleep(100);
  }
  return v.sort((a, b) => a - b)[2]!;
}
