import { performance } from 'node:perf_hooks';

/** What an entry carries to sit in a HeartbeatRing: the group it was put in (-1 while out). */
export interface RingSlot {
  heartbeatSlot: number;
}

/** One group is visited per tick of about this long. */
const TICK_MS = 100;
/** A very long interval still gets groups of a useful size. */
const MAX_SLOTS = 600;

export interface HeartbeatRingOptions {
  /** Every entry is beaten at least once per interval. */
  intervalMs: number;
  /** Milliseconds from a monotonic clock (tests pass their own). */
  now?: () => number;
}

/**
 * The open streams of a replica, held in groups that the heartbeat visits one per tick, so that
 * every stream still gets its ping once per interval but the pings are spread over the
 * interval. Pinging every stream from one timer wrote to all of them in one burst: at 5,000
 * streams on one replica that held the event loop for tens of milliseconds, and every delivery
 * and request due meanwhile waited behind it (the bench's p99 showed it as an 85–110 ms tail,
 * once per interval).
 *
 * Entries join the groups in turn. Each tick visits the groups whose time has come by the
 * clock, and the next tick is set for the next group's time: late timers do not add up, and a
 * late tick visits every group it missed. So an entry is beaten at most one interval (plus the
 * lateness of one timer) after its previous beat, as with the one timer before. The timer runs
 * only while the ring holds entries.
 */
export class HeartbeatRing<T extends RingSlot> implements Iterable<T> {
  private readonly slots: Set<T>[];
  private readonly tickMs: number;
  private readonly now: () => number;
  private count = 0;
  /** The group the next entry joins. */
  private nextSlot = 0;
  /** When the current round began, and how many of its groups were visited. */
  private roundStart = 0;
  private visited = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly beat: (entry: T) => void,
    opts: HeartbeatRingOptions,
  ) {
    const slots = Math.max(1, Math.min(MAX_SLOTS, Math.floor(opts.intervalMs / TICK_MS)));
    this.slots = Array.from({ length: slots }, () => new Set<T>());
    // Rounded down: a round is never longer than the interval.
    this.tickMs = Math.max(1, Math.floor(opts.intervalMs / slots));
    this.now = opts.now ?? (() => performance.now());
  }

  get size(): number {
    return this.count;
  }

  add(entry: T): void {
    if (entry.heartbeatSlot >= 0) return;
    const slot = this.nextSlot;
    this.nextSlot = (slot + 1) % this.slots.length;
    entry.heartbeatSlot = slot;
    this.slots[slot]!.add(entry);
    if (this.count++ === 0) this.startTimer();
  }

  /** False when it was not in the ring. Safe during a beat (also of the entry being beaten). */
  delete(entry: T): boolean {
    const slot = entry.heartbeatSlot;
    if (slot < 0 || !this.slots[slot]!.delete(entry)) return false;
    entry.heartbeatSlot = -1;
    if (--this.count === 0) this.stopTimer();
    return true;
  }

  has(entry: T): boolean {
    return entry.heartbeatSlot >= 0 && this.slots[entry.heartbeatSlot]!.has(entry);
  }

  *[Symbol.iterator](): Iterator<T> {
    for (const slot of this.slots) yield* slot;
  }

  /** Stops the timer; the entries stay (the owner ends them). */
  close(): void {
    this.stopTimer();
  }

  private readonly tick = (): void => {
    this.timer = null;
    const groups = this.slots.length;
    const now = this.now();
    // Group k is due k + 1 ticks into the round.
    const due = Math.min(groups, Math.floor((now - this.roundStart) / this.tickMs));
    for (; this.visited < due; this.visited++) {
      for (const entry of this.slots[this.visited]!) this.beat(entry);
    }
    if (this.visited === groups) {
      // The next round follows this one, unless the timer came a tick or more late (a stalled
      // event loop): then it starts now, and no burst of overdue groups follows.
      const end = this.roundStart + groups * this.tickMs;
      this.roundStart = now - end >= this.tickMs ? now : end;
      this.visited = 0;
    }
    if (this.count > 0 && this.timer === null) this.arm();
  };

  /** One timeout per tick, set for when the next group is due: lateness does not add up. */
  private arm(): void {
    const at = this.roundStart + (this.visited + 1) * this.tickMs;
    this.timer = setTimeout(this.tick, Math.max(1, Math.ceil(at - this.now())));
    this.timer.unref();
  }

  private startTimer(): void {
    if (this.timer) return;
    this.roundStart = this.now();
    this.visited = 0;
    this.arm();
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
