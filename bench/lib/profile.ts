/**
 * Self time of a V8 .cpuprofile by function and by package/file: where a replica's time went
 * (`--profile` / `--profile-dir`, and bench/profile-summary.ts for files kept from a run).
 */
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function where(url: string): string {
  if (!url) return '(native/vm)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) return 'node core';
  const src = url.indexOf('/src/');
  if (src >= 0) return url.slice(src + 1);
  return url;
}

/** The summary of one profile file as text: top `top` by package/file and by function. */
export function summariseProfile(file: string, top: number, title = path.basename(file)): string {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const fn = new Map<string, number>();
  const pkg = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') continue;
    busy += us;
    const key = `${name}  ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const w = ['(garbage collector)', '(program)'].includes(name) ? name : where(n.callFrame.url);
    pkg.set(w, (pkg.get(w) ?? 0) + us);
  }
  const wall = (p.endTime - p.startTime) / 1000;
  const out = [`${title}: ${wall.toFixed(0)} ms profiled, ${(busy / 1000).toFixed(0)} ms busy`];
  const show = (heading: string, m: Map<string, number>) => {
    out.push(`  ${heading}`);
    for (const [k, us] of [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      out.push(
        `    ${((us * 100) / busy).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`,
      );
    }
  };
  show('self time by package/file', pkg);
  show('self time by function', fn);
  return out.join('\n');
}

/** The generator's own post-window profile (first pass), beside the replicas'. */
export const generatorProfilePath = (dir: string) =>
  path.join(dir, `generator-${process.pid}.cpuprofile`);

/** The profile file a replica with this pid writes (see cpu-profile-preload.js). */
export const replicaProfilePath = (dir: string, pid: number) =>
  path.join(dir, `replica-${pid}.cpuprofile`);

/**
 * Profiles this process (the generator's main thread) between `start()` and `stop()`, and
 * writes the profile to `file`: the same V8 profiler the replicas' preload drives.
 */
export class SelfProfiler {
  private readonly session = new inspector.Session();
  private running = false;

  constructor(private readonly file: string) {}

  start(): void {
    this.session.connect();
    this.session.post('Profiler.enable');
    this.session.post('Profiler.setSamplingInterval', { interval: 500 });
    this.session.post('Profiler.start');
    this.running = true;
  }

  stop(): Promise<void> {
    if (!this.running) return Promise.resolve();
    this.running = false;
    return new Promise((resolve, reject) => {
      this.session.post('Profiler.stop', (err, res) => {
        this.session.disconnect();
        if (err) return reject(err);
        fs.writeFileSync(this.file, JSON.stringify(res.profile));
        resolve();
      });
    });
  }
}
