import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { nowMs } from './clock';
import type { LoopDelay } from './loop-delay';
import {
  SubscriberPool,
  type PoolPlan,
  type PoolProgress,
  type PoolResult,
} from './subscriber-pool';

/** A share of the subscribers, run in this process or in a forked worker. */
export interface SubscriberGroup {
  /** The process that runs the sockets (for CPU accounting). */
  readonly pid: number;
  /** Opens every subscriber of the group; resolves when each got `connected` or failed. */
  open(): Promise<void>;
  /** Latest known counts (a worker pushes them every PROGRESS_MS). */
  progress(): PoolProgress;
  result(): Promise<PoolResult>;
  /** Estimated clock offset of the group's process vs this one, from the fastest of `rounds` pings. */
  clockCheck(rounds?: number): Promise<{ offsetMs: number; rttMs: number }>;
  /** Starts reading the event-loop delay of the group's own process (a worker's; none here). */
  startLoopDelay(): Promise<void>;
  /** That process's loop delay since startLoopDelay; null for subscribers in this process. */
  loopDelay(): Promise<LoopDelay | null>;
  close(): Promise<void>;
}

export const PROGRESS_MS = 50;

export class LocalGroup implements SubscriberGroup {
  readonly pid = process.pid;
  private readonly pool: SubscriberPool;

  constructor(plan: PoolPlan) {
    this.pool = new SubscriberPool(plan);
  }
  open(): Promise<void> {
    return this.pool.openAll();
  }
  progress(): PoolProgress {
    return this.pool.progress();
  }
  async result(): Promise<PoolResult> {
    return this.pool.result();
  }
  async clockCheck(): Promise<{ offsetMs: number; rttMs: number }> {
    return { offsetMs: 0, rttMs: 0 };
  }
  // The poster's own loop delay covers subscribers in this process.
  async startLoopDelay(): Promise<void> {}
  async loopDelay(): Promise<null> {
    return null;
  }
  async close(): Promise<void> {
    this.pool.close();
  }
}

/** Parent → worker messages. */
export type ToWorker =
  | { t: 'open'; plan: PoolPlan }
  | { t: 'result' }
  | { t: 'ping'; id: number }
  | { t: 'loop-delay-start' }
  | { t: 'loop-delay' }
  | { t: 'close' };
/** Worker → parent messages. */
export type FromWorker =
  | { t: 'opened' }
  | { t: 'progress'; progress: PoolProgress }
  | { t: 'result'; result: PoolResult }
  | { t: 'pong'; id: number; at: number }
  | { t: 'loop-delay-started' }
  | { t: 'loop-delay'; reading: LoopDelay | null }
  | { t: 'closed' };

const emptyProgress = (): PoolProgress => ({
  connected: 0,
  everConnected: 0,
  unique: 0,
  duplicates: 0,
  failedConnects: 0,
});

/**
 * Subscribers in a child process (`subscriber-worker.ts`), so that parsing
 * deliveries does not delay the poster's timers. Messages use the
 * `advanced` (structured clone) serialization so typed arrays cross as is.
 */
export class WorkerGroup implements SubscriberGroup {
  readonly pid: number;
  private readonly child: ChildProcess;
  private latest = emptyProgress();
  private readonly waiters = new Map<string, (msg: FromWorker) => void>();
  private exited = false;
  private readonly exitPromise: Promise<void>;

  private constructor(private readonly plan: PoolPlan) {
    this.child = fork(path.join(__dirname, 'subscriber-worker.ts'), [], {
      execArgv: ['--require', 'tsx/cjs'],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.pid = this.child.pid!;
    this.exitPromise = new Promise((resolve) =>
      this.child.on('exit', () => {
        this.exited = true;
        for (const [, w] of this.waiters) w({ t: 'closed' });
        this.waiters.clear();
        resolve();
      }),
    );
    this.child.on('message', (msg: FromWorker) => {
      if (msg.t === 'progress') {
        this.latest = msg.progress;
        return;
      }
      const key = msg.t === 'pong' ? `pong:${msg.id}` : msg.t;
      const w = this.waiters.get(key);
      this.waiters.delete(key);
      w?.(msg);
    });
  }

  static async start(plan: PoolPlan): Promise<WorkerGroup> {
    const g = new WorkerGroup(plan);
    await g.clockCheck(1); // the worker answers once it has loaded
    return g;
  }

  private request(msg: ToWorker, replyKey: string): Promise<FromWorker> {
    if (this.exited) return Promise.reject(new Error(`subscriber worker ${this.pid} has exited`));
    return new Promise((resolve, reject) => {
      this.waiters.set(replyKey, (reply) =>
        reply.t === 'closed' && replyKey !== 'closed'
          ? reject(new Error(`subscriber worker ${this.pid} exited`))
          : resolve(reply),
      );
      this.child.send(msg);
    });
  }

  async open(): Promise<void> {
    await this.request({ t: 'open', plan: this.plan }, 'opened');
  }

  progress(): PoolProgress {
    return this.latest;
  }

  async result(): Promise<PoolResult> {
    const reply = await this.request({ t: 'result' }, 'result');
    if (reply.t !== 'result') throw new Error('unexpected reply');
    this.latest = reply.result;
    return reply.result;
  }

  async startLoopDelay(): Promise<void> {
    await this.request({ t: 'loop-delay-start' }, 'loop-delay-started');
  }

  async loopDelay(): Promise<LoopDelay | null> {
    const reply = await this.request({ t: 'loop-delay' }, 'loop-delay');
    return reply.t === 'loop-delay' ? reply.reading : null;
  }

  async clockCheck(rounds = 20): Promise<{ offsetMs: number; rttMs: number }> {
    let best = { offsetMs: 0, rttMs: Infinity };
    for (let i = 0; i < rounds; i++) {
      const sent = nowMs();
      const reply = await this.request({ t: 'ping', id: i }, `pong:${i}`);
      const back = nowMs();
      if (reply.t !== 'pong') continue;
      const rtt = back - sent;
      // NTP-style: the worker read its clock somewhere inside [sent, back].
      if (rtt < best.rttMs) best = { offsetMs: reply.at - (sent + back) / 2, rttMs: rtt };
    }
    return best;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    try {
      this.child.send({ t: 'close' } satisfies ToWorker);
    } catch {
      this.child.kill('SIGKILL');
    }
    await this.exitPromise;
    clearTimeout(timer);
  }
}
