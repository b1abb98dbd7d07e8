/** What every bench run needs around its load: ordered cleanup and enough open files. */
import { execFileSync } from 'node:child_process';
import { sleep } from './clock';
import { readNofileLimit } from './procstat';

export const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

/** Stops what was started, last first; safe to call twice (SIGINT during cleanup). */
export class Cleanup {
  private readonly steps: { name: string; fn: () => Promise<unknown> }[] = [];
  private running: Promise<void> | undefined;

  /** Registers a stop step; once cleanup has begun (SIGINT), stops the thing at once and aborts the run. */
  add(name: string, fn: () => Promise<unknown>): void {
    if (this.running) {
      void fn().catch(() => undefined);
      throw new Error('interrupted');
    }
    this.steps.push({ name, fn });
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const step of this.steps.reverse()) {
        try {
          await Promise.race([
            step.fn(),
            sleep(20000).then(() => Promise.reject(new Error('timed out after 20 s'))),
          ]);
        } catch (err) {
          log(`cleanup: ${step.name}: ${(err as Error).message}`);
        }
      }
    })();
    return this.running;
  }
}

/** Makes sure this process (and so every child it starts) may open enough files. */
export function ensureFdLimit(needed: number): { before: number; after: number; action: string } {
  const before = readNofileLimit();
  if (before.soft >= needed) {
    return { before: before.soft, after: before.soft, action: 'none (enough)' };
  }
  // Node raises its own soft limit to the hard one at start; children inherit both.
  // Raising the hard limit needs root (CAP_SYS_RESOURCE), which this machine has.
  const target = Math.max(needed, before.hard === Infinity ? needed : before.hard);
  execFileSync('prlimit', [`--pid=${process.pid}`, `--nofile=${target}:${target}`]);
  const after = readNofileLimit();
  if (after.soft < needed) {
    throw new Error(`need ${needed} open files, limit is ${after.soft} (prlimit failed)`);
  }
  return {
    before: before.soft,
    after: after.soft,
    action: `prlimit --nofile=${target}:${target} on the bench process`,
  };
}

/**
 * Runs one after another, each with its own Cleanup: SIGINT/SIGTERM stops the current run's
 * servers and exits; a deliberate second signal exits without finishing the cleanup.
 */
export class SupervisedRuns {
  interrupted = false;
  private cleanup = new Cleanup();
  private firstSignalAt = 0;

  constructor() {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  async run<T>(what: string, fn: (c: Cleanup) => Promise<T>): Promise<T> {
    this.cleanup = new Cleanup();
    try {
      return await fn(this.cleanup);
    } finally {
      if (!this.interrupted) {
        log(`${what}: stopping everything`);
        await this.cleanup.run();
      }
    }
  }

  private readonly onSignal = (signal: NodeJS.Signals) => {
    if (this.interrupted) {
      // Ctrl-C reaches this process twice (directly and relayed by the tsx/npm
      // wrappers); only a later, deliberate second signal skips the cleanup.
      if (Date.now() - this.firstSignalAt < 3000) return;
      log(`${signal} again: exiting without finishing the cleanup`);
      process.exit(130);
    }
    this.interrupted = true;
    this.firstSignalAt = Date.now();
    log(`${signal}: stopping everything`);
    void this.cleanup.run().then(() => process.exit(130));
  };
}
