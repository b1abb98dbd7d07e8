/**
 * The links an entry carries to sit in an ExpiryWheel. They live on the entry itself (an
 * intrusive list), so scheduling an entry allocates nothing: thousands of idle streams each
 * pay three fields, not a timer, a closure or a list node.
 */
export interface WheelLinks<T> {
  wheelNext: T | null;
  wheelPrev: T | null;
  /** The second it is due, counted from the wheel's epoch; -1 while not scheduled. */
  wheelDue: number;
}

/** Slots of one second each: an entry due further ahead is looked at once per round. */
const DEFAULT_SLOTS = 128;
const TICK_MS = 1000;
/** Keeps a due second a small integer (V8 Smi: no boxed number per entry); ~34 years. */
const MAX_DUE = 2 ** 30 - 1;
const UNSCHEDULED = -1;
/** Taken out as due in this tick, its callback still to run. */
const FIRING = -2;

/**
 * Deadlines for many long-lived entries on one timer: a hashed timer wheel of one-second
 * slots that ticks once a second while it holds anything. An entry is handed to `onExpire`
 * at the first tick at or after its deadline, so at most about two seconds late. Removing an
 * entry (its stream closed first) is O(1). Deadlines are wall-clock times (`Date.now()`), as a
 * token's `exp` is.
 */
export class ExpiryWheel<T extends WheelLinks<T>> {
  private readonly slots: (T | null)[];
  /** Wall-clock second that due seconds count from. */
  private readonly epoch: number;
  /** The last second whose slot was visited. */
  private lastTick: number;
  private count = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly onExpire: (entry: T) => void,
    slots = DEFAULT_SLOTS,
  ) {
    this.slots = new Array<T | null>(slots).fill(null);
    this.epoch = Math.floor(Date.now() / 1000);
    this.lastTick = 0;
  }

  get size(): number {
    return this.count;
  }

  /** Schedules `entry` (again) to expire at `atMs` (epoch milliseconds). */
  add(entry: T, atMs: number): void {
    if (entry.wheelDue >= 0) this.unlink(entry);
    else this.count++;
    // A deadline already past goes into the next slot to be visited: it fires on the next tick.
    const due = Math.min(MAX_DUE, Math.max(Math.ceil(atMs / 1000) - this.epoch, this.lastTick + 1));
    entry.wheelDue = due;
    const slot = due % this.slots.length;
    const head = this.slots[slot] ?? null;
    entry.wheelPrev = null;
    entry.wheelNext = head;
    if (head) head.wheelPrev = entry;
    this.slots[slot] = entry;
    if (!this.timer) {
      this.timer = setInterval(this.tick, TICK_MS);
      this.timer.unref();
    }
  }

  /** Takes `entry` out (also when due in the tick running now); a no-op when not scheduled. */
  remove(entry: T): void {
    if (entry.wheelDue < 0) {
      entry.wheelDue = UNSCHEDULED;
      return;
    }
    this.unlink(entry);
    entry.wheelDue = UNSCHEDULED;
    if (--this.count === 0) this.stopTimer();
  }

  /** Drops every entry without expiring it and stops the timer. */
  close(): void {
    for (let i = 0; i < this.slots.length; i++) {
      for (let e = this.slots[i] ?? null; e;) {
        const next: T | null = e.wheelNext;
        e.wheelNext = e.wheelPrev = null;
        e.wheelDue = UNSCHEDULED;
        e = next;
      }
      this.slots[i] = null;
    }
    this.count = 0;
    this.stopTimer();
  }

  private readonly tick = (): void => {
    const now = Math.floor(Date.now() / 1000) - this.epoch;
    if (now <= this.lastTick) {
      // The same second again, or the clock went back: revisit from there (entries still
      // fire by their due second only).
      this.lastTick = Math.min(this.lastTick, now);
      return;
    }
    // After a stall longer than a round, one visit of every slot covers everything.
    const from = Math.max(this.lastTick + 1, now - this.slots.length + 1);
    this.lastTick = now;
    const due: T[] = [];
    for (let s = from; s <= now; s++) {
      const slot = s % this.slots.length;
      for (let e = this.slots[slot] ?? null; e;) {
        const next: T | null = e.wheelNext;
        if (e.wheelDue <= now) {
          this.remove(e);
          e.wheelDue = FIRING;
          due.push(e);
        }
        e = next;
      }
    }
    // Callbacks run after the walk: they may add or remove entries, those due now included.
    for (const e of due) {
      if (e.wheelDue !== FIRING) continue;
      e.wheelDue = UNSCHEDULED;
      this.onExpire(e);
    }
  };

  private unlink(entry: T): void {
    const { wheelPrev: prev, wheelNext: next } = entry;
    if (prev) prev.wheelNext = next;
    else this.slots[entry.wheelDue % this.slots.length] = next;
    if (next) next.wheelPrev = prev;
    entry.wheelNext = entry.wheelPrev = null;
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
