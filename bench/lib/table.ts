/** The human-readable table of one run of our service (the JSON has every figure). */
import type { BenchResult } from './report';
import { costRows } from './cost';
import type { GeneratorLoopDelays } from './loop-delay';

/** The generator's loop delay in a pass: its main thread, then its subscriber workers if any. */
function generatorLoopDelay(p: GeneratorLoopDelays): string {
  const workers = p.generator_workers_event_loop_delay_post_window;
  return (
    JSON.stringify(p.generator_event_loop_delay_post_window) +
    (workers.length ? `; subscriber workers ${JSON.stringify(workers)}` : '')
  );
}

/** Our run's figures as aligned `name  value` rows. */
export function table(r: BenchResult): string {
  const rows: [string, string][] = [];
  const s = (x: { p50: number; p90: number; p99: number; max: number }) =>
    `p50 ${x.p50}  p90 ${x.p90}  p99 ${x.p99}  max ${x.max}`;
  const c = r.config;
  rows.push([
    'config',
    `${c.subscribers} subscribers / ${c.tracks} tracks / ${c.comments} comments at ${c.rate_per_s}/s, ` +
      `${c.albums} album(s), ${c.replicas} replicas${c.via_nginx ? ' via nginx' : ''}, ` +
      `${c.subscriber_workers} subscriber worker(s)`,
  ]);
  rows.push(['delivery latency (ms)', s(r.latency_ms)]);
  rows.push(['  p50/p99 by fifth of posts', fifths(r.latency_by_fifth_ms)]);
  r.later_passes.forEach((p, i) => {
    rows.push([
      `  pass ${i + 2}, ${p.restarted ? 'restarted' : 'same'} replicas (ms)`,
      `${s(p.latency_ms)}  (lost ${p.lost}, dup ${p.duplicates}; first/this p99 ` +
        `${p.latency_ms.p99 > 0 ? (r.latency_ms.p99 / p.latency_ms.p99).toFixed(2) : '-'}x; ` +
        `POST p50/p99 ${p.post_latency_ms.p50}/${p.post_latency_ms.p99} ms; servers ` +
        `${p.cost.servers_total.us_per_post} µs/POST, ${p.cost.servers_total.us_per_delivery} µs/delivery; ` +
        `GC ${JSON.stringify(p.gc_post_window)}; ` +
        `loop delay ${JSON.stringify(p.event_loop_delay_post_window)}; ` +
        `generator loop delay ${generatorLoopDelay(p)}; ` +
        `by fifth ${fifths(p.latency_by_fifth_ms)})`,
    ]);
  });
  if (r.latency_same_replica_ms) rows.push(['  same replica (ms)', s(r.latency_same_replica_ms)]);
  if (r.latency_cross_replica_ms)
    rows.push(['  cross replica (ms)', s(r.latency_cross_replica_ms)]);
  rows.push(['  after POST response (ms)', s(r.latency_after_post_response_ms)]);
  const d = r.deliveries;
  rows.push([
    'deliveries',
    `expected ${d.expected}, unique ${d.unique}, lost ${d.lost}, duplicates ${d.duplicates}`,
  ]);
  rows.push(['deliveries/s', `${d.per_s_post_window} (post window), ${d.per_s_overall} (overall)`]);
  const a = d.anomalies;
  rows.push([
    'anomalies',
    `misrouted ${a.misrouted}, id regressions ${a.id_regressions}, unexpected closes ${a.unexpected_closes}, ` +
      `other events ${JSON.stringify(a.other_events)}`,
  ]);
  rows.push([
    'POST latency (ms)',
    `p50 ${r.posts.latency_ms.p50}  p99 ${r.posts.latency_ms.p99}  max ${r.posts.latency_ms.max}` +
      ` (${r.posts.posted} ok, ${Object.values(r.posts.failed).reduce((x, y) => x + y, 0)} failed, ${r.posts.achieved_rate_per_s}/s)`,
  ]);
  rows.push([
    'subscribers',
    `${r.subscribers.connected} connected, ${r.subscribers.failed} failed, per replica ${JSON.stringify(r.subscribers.per_replica)}, ` +
      `connect phase ${r.subscribers.connect_phase_ms} ms (p50 ${r.subscribers.connect_ms.p50} p99 ${r.subscribers.connect_ms.p99} ms per stream)`,
  ]);
  for (const [i, x] of r.rss_per_stream.replicas.entries()) {
    rows.push([
      `RSS replica-${i + 1}`,
      `${x.before_kb} -> ${x.idle_kb} KB with ${x.streams} streams: ${x.per_stream_kb} KB/stream`,
    ]);
  }
  rows.push([
    'RSS per stream (mean)',
    `${r.rss_per_stream.mean_per_stream_kb} KB` +
      (r.rss_per_stream.replicas.some((x) => !(x.streams >= 1000))
        ? ' (under 1,000 streams on a replica: GC noise dominates, not a measurement)'
        : ''),
  ]);
  const cpu = r.cpu_post_window;
  rows.push([
    'CPU, post window',
    `${cpu.wall_ms} ms wall, machine ${cpu.machine_busy_pct_of_all_cores}% of ${cpu.cores} cores busy, ` +
      `other processes ${cpu.other_processes_pct_of_one_core}% of a core`,
  ]);
  for (const [name, p] of Object.entries(cpu.processes)) {
    rows.push([`  ${name}`, `${p.cpu_ms} ms = ${p.pct_of_one_core}% of a core`]);
  }
  rows.push(['gap fills from the log', JSON.stringify(r.gap_fills_post_window)]);
  rows.push(['replica GC pauses, post window', JSON.stringify(r.gc_post_window)]);
  rows.push(['replica event-loop delay', JSON.stringify(r.event_loop_delay_post_window)]);
  rows.push(['generator event-loop delay', generatorLoopDelay(r)]);
  if (r.replica_cpu_us_per_delivery) {
    rows.push(['replica CPU per delivery', `${JSON.stringify(r.replica_cpu_us_per_delivery)} µs`]);
  }
  rows.push(...costRows(r.cost));
  rows.push([
    'clock',
    r.config.subscriber_workers === 0
      ? 'subscribers in the posting process (one clock)'
      : `worker offset ≤ ${r.clock.worker_offset_ms_max_abs} ms (ping rtt ${r.clock.worker_ping_rtt_ms_max} ms)`,
  ]);
  rows.push([
    'run',
    `${r.duration_s} s, load average at start ${r.config.load_average_at_start.join(' ')}`,
  ]);
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

/**
 * Rows (the first is the header) as columns padded to their widest cell, two spaces apart:
 * `start` right-aligns (figures), `end` left-aligns (names).
 */
export function alignedColumns(rows: string[][], pad: 'start' | 'end'): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const fit = (cell: string, c: number) =>
    pad === 'start' ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!);
  return rows.map((r) => r.map(fit).join('  ')).join('\n');
}

/** "p50/p99 | p50/p99 | ..." for the slices of a post window. */
export const fifths = (slices: { p50: number; p99: number }[]) =>
  slices.map((x) => `${x.p50}/${x.p99}`).join(' | ');
