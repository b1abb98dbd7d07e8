/**
 * CPU per process group over a phase, and the cost report: CPU µs per accepted POST and per
 * delivered event for each group (replicas, PostgreSQL, Redis, nginx, the generator).
 */
import type { CpuPhase } from './procstat';
import { round } from './stats';

export function cpuReport(phase: CpuPhase, extra: Record<string, number> = {}) {
  const processes: Record<string, { cpu_ms: number; pct_of_one_core: number }> = {};
  let ours = 0;
  for (const [name, ms] of Object.entries(phase.groupsMs)) {
    ours += ms;
    processes[name] = {
      cpu_ms: round(ms, 0),
      pct_of_one_core: round((ms * 100) / phase.wallMs, 1),
    };
  }
  const machineMs = (phase.machineBusyPct / 100) * phase.cores * phase.wallMs;
  return {
    wall_ms: round(phase.wallMs, 0),
    cores: phase.cores,
    machine_busy_pct_of_all_cores: round(phase.machineBusyPct, 1),
    processes,
    /** Busy CPU of the machine not spent in the processes above (other users of the machine). */
    other_processes_pct_of_one_core: round(((machineMs - ours) * 100) / phase.wallMs, 1),
    ...extra,
  };
}

export interface CostReport {
  accepted_posts: number;
  delivered_events: number;
  /** Per group: CPU µs per accepted POST and per delivered event (the same CPU, two divisors). */
  groups: Record<string, { us_per_post: number; us_per_delivery: number }>;
  /** The servers' side: every group but the generator. */
  servers_total: { us_per_post: number; us_per_delivery: number };
}

export const isGenerator = (group: string) => group.startsWith('generator');

/** The post window's CPU divided by what it bought. */
export function costReport(phase: CpuPhase, posts: number, deliveries: number): CostReport {
  const per = (ms: number) => ({
    us_per_post: round((ms * 1000) / Math.max(1, posts), 1),
    us_per_delivery: round((ms * 1000) / Math.max(1, deliveries), 2),
  });
  const groups: CostReport['groups'] = {};
  let servers = 0;
  for (const [name, ms] of Object.entries(phase.groupsMs)) {
    groups[name] = per(ms);
    if (!isGenerator(name)) servers += ms;
  }
  return {
    accepted_posts: posts,
    delivered_events: deliveries,
    groups,
    servers_total: per(servers),
  };
}

/** Table rows for a cost report. */
export function costRows(c: CostReport): [string, string][] {
  const rows: [string, string][] = [
    [
      'cost (CPU, post window)',
      `per accepted POST (${c.accepted_posts}) / per delivered event (${c.delivered_events})`,
    ],
  ];
  for (const [name, g] of Object.entries(c.groups)) {
    rows.push([`  ${name}`, `${g.us_per_post} µs / ${g.us_per_delivery} µs`]);
  }
  const t = c.servers_total;
  rows.push(['  servers (all but generator)', `${t.us_per_post} µs / ${t.us_per_delivery} µs`]);
  return rows;
}
