import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

/** Kernel clock ticks per second (the unit of /proc/<pid>/stat CPU times). */
export const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Resident set size in KiB (VmRSS), or NaN if the process is gone. */
export function readRssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** User + system CPU time of a process (all its threads) in ms, or NaN if it is gone. */
export function readCpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name (which may contain spaces).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS; // utime, stime
  } catch {
    return NaN;
  }
}

/** Machine-wide CPU time (all cores) from /proc/stat, in ms. */
export function readMachineCpu(): { busyMs: number; totalMs: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = v[3]! + v[4]!; // idle + iowait
  return { busyMs: ((total - idle) * 1000) / CLOCK_TICKS, totalMs: (total * 1000) / CLOCK_TICKS };
}

/** Ids of processes whose command line matches `test`. */
export function findPids(test: (cmdline: string) => boolean): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (test(cmd)) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Direct children of `pid`. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Soft and hard RLIMIT_NOFILE of a process. */
export function readNofileLimit(pid: number | 'self' = 'self'): { soft: number; hard: number } {
  const text = fs.readFileSync(`/proc/${pid}/limits`, 'utf8');
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  const num = (s: string | undefined) => (s === 'unlimited' ? Infinity : Number(s));
  return { soft: num(m?.[1]), hard: num(m?.[2]) };
}

/** CPU ms per process of named groups at one instant; `cpuBetween` diffs two. */
export interface CpuSnapshot {
  atMs: number;
  machine: { busyMs: number; totalMs: number };
  groups: Record<string, Map<number, number>>;
}

export function snapshotCpu(groups: Record<string, number[]>, atMs: number): CpuSnapshot {
  const out: Record<string, Map<number, number>> = {};
  for (const [name, pids] of Object.entries(groups)) {
    const m = new Map<number, number>();
    for (const pid of pids) {
      const v = readCpuMs(pid);
      if (Number.isFinite(v)) m.set(pid, v);
    }
    out[name] = m;
  }
  return { atMs, machine: readMachineCpu(), groups: out };
}

export interface CpuPhase {
  wallMs: number;
  /** Busy share of the whole machine, % of all cores. */
  machineBusyPct: number;
  cores: number;
  /** CPU ms per group; a process that appeared during the phase counts from 0. */
  groupsMs: Record<string, number>;
}

export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): CpuPhase {
  const groupsMs: Record<string, number> = {};
  for (const [name, end] of Object.entries(b.groups)) {
    const start = a.groups[name] ?? new Map<number, number>();
    let sum = 0;
    for (const [pid, ms] of end) sum += ms - (start.get(pid) ?? 0);
    groupsMs[name] = sum;
  }
  const total = b.machine.totalMs - a.machine.totalMs;
  return {
    wallMs: b.atMs - a.atMs,
    machineBusyPct: total > 0 ? ((b.machine.busyMs - a.machine.busyMs) * 100) / total : NaN,
    cores: os.cpus().length,
    groupsMs,
  };
}
