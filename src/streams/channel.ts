import { performance } from 'node:perf_hooks';
import type pino from 'pino';
import type { BusMessage, EventLogReader } from '../events/types';
import type { Metrics } from '../metrics/metrics';
import { encodeFrame } from './frames';
import type { BatchedHeadReads } from './head-reads';
import { READ_BATCH, type Replay } from './replay';
import type { StreamSession } from './session';
import { writeStaged, type StagedFrame } from './staged-frames';

/*
 * ORDERING: what every subscriber's correctness rests on.
 *
 * A stream's work runs as one queue of jobs (init, bus messages, joins, fills) that never
 * interleave; `lastSeq` is the highest seq delivered live here.
 *
 * 1. init: subscribe on the bus FIRST, then read the log head. Anything committed after the
 *    head read is then on the bus, so it arrives as a message or is filled from the log.
 * 2. message: in order (seq = lastSeq + 1), duplicate (seq <= lastSeq) or ephemeral (no seq):
 *    accepted at once. Ahead of a gap: it waits up to GAP_WAIT_MS for the missing seqs on the
 *    bus (replicas publishing one stream often deliver N+1 just before N), delivers those in
 *    seq order, then reads from the log whatever is still missing, then itself. A read that
 *    fails is retried (FILL_RETRY_MS) rather than skipped: a skipped id could never be resumed.
 * 3. join (a session entering the live set), inside the queue, in this order:
 *    a. flush what is staged: those frames predate the session, or it gets them from the log;
 *    b. if its replay went past lastSeq (the log is ahead of the bus), fill everyone forward;
 *    c. a resumed session gets the log tail (lastSentSeq, lastSeq], unpaced;
 *    d. its greeting (`connected` or `reset`) is written only now: every event committed after
 *       the client saw `connected` is delivered to it;
 *    e. it joins `live`; from the next flush on it receives the staged frames.
 * 4. flush writes what is staged once per live session; a session whose replay already sent
 *    some of the ids gets only the rest, so ids stay strictly increasing per connection.
 *
 * Opening a stream (StreamHub.open) is: register the session, send the head and `retry:`
 * (plus `connected` at once for a resume), replay (replay.ts: outside the queue, paced by the
 * client, up to the head read then), then the join (3), which sends only what arrived meanwhile.
 * Memory-saving details (shared frames, no per-session closures) stay out of this ordering.
 */

/**
 * Two replicas publishing one stream often deliver seq N+1 a moment before seq N: a message
 * ahead of a gap waits up to this long for the missing ones on the bus before the log is read.
 */
const GAP_WAIT_MS = 10;
/** A fill that failed (log unreachable) is retried after this long. */
const FILL_RETRY_MS = 1000;
const noop = (): void => undefined;

export type StreamKind = 'track' | 'user';

/** What every channel of a hub shares: one object per hub, not per stream or session. */
export interface ChannelHost {
  readonly log: Pick<EventLogReader, 'readAfter'>;
  readonly heads: Pick<BatchedHeadReads, 'read'>;
  readonly metrics: Pick<Metrics, 'eventsDelivered' | 'deliveryLag' | 'gapFills'>;
  readonly logger: pino.Logger;
  readonly replay: Replay;
  /** Unsent bytes over which a client counts as too slow and is cut off. */
  readonly maxBufferBytes: number;
  /** Subscribes the stream on the bus (in order with its unsubscribes). */
  subscribe(stream: string): Promise<void>;
  /** Cuts off a client that fell too far behind and forgets it. */
  dropSlow(session: StreamSession): void;
  /** The stream cannot be served (no bus subscription or head): close it and its sessions. */
  failed(channel: StreamChannel): void;
}

type Job =
  | { kind: 'init' }
  | { kind: 'message'; message: BusMessage; receivedAt: number }
  | { kind: 'join'; session: StreamSession; done: () => void }
  | { kind: 'fill'; upTo: number; done: () => void };

/** One stream on this replica (centrifuge's hub channel); exists while it has local sessions. */
export class StreamChannel {
  /** Sessions receiving live events. */
  readonly live = new Set<StreamSession>();
  /** Live sessions plus those still replaying/joining. */
  members = 0;
  /** Highest seq delivered live here (initialised from the log head). */
  lastSeq = 0;
  private ready = false;
  private closed = false;
  /** Serialized work: init, bus messages, joins and fills never interleave. */
  private jobs: Job[] = [];
  private running = false;
  /** Frames waiting for the next flush: events that arrive together go out in one write. */
  private staged: StagedFrame[] = [];
  private flushScheduled = false;
  /** Set while a message ahead of a gap waits for the missing ones (see GAP_WAIT_MS). */
  private gapWaiter: (() => void) | null = null;
  /** Set while a failed fill waits to be retried: the highest seq known to exist. */
  private retryUpTo = 0;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(
    /** `track:<id>` or `user:<id>`. */
    readonly stream: string,
    readonly kind: StreamKind,
    /** The track of a track stream; null for the personal stream. */
    readonly trackId: string | null,
    readonly host: ChannelHost,
  ) {
    this.initialized = new Promise<boolean>((settle) => (this.settleInit = settle));
    this.enqueue({ kind: 'init' });
  }

  /** Settles once step 1 ran: true when it read the head, false when it failed or closed. */
  readonly initialized: Promise<boolean>;
  private settleInit!: (ok: boolean) => void;

  get isClosed(): boolean {
    return this.closed;
  }

  get isReady(): boolean {
    return this.ready;
  }

  /** A message from the bus for this stream. */
  receive(message: BusMessage): void {
    if (this.closed) return;
    const receivedAt = performance.now();
    // Fast path: nothing queued and the message is in order → deliver now.
    if (this.ready && !this.running && this.jobs.length === 0) {
      if (message.seq === null || message.seq <= this.lastSeq + 1) {
        this.acceptInOrder(message, receivedAt);
        return;
      }
    }
    this.enqueue({ kind: 'message', message, receivedAt });
  }

  /** Queues the session's join (step 3); resolves once it ran or the channel closed. */
  join(session: StreamSession): Promise<void> {
    return new Promise<void>((done) => this.enqueue({ kind: 'join', session, done }));
  }

  /** Queues delivery of what the log has up to `upTo` (catch-up after a bus reconnect). */
  fill(upTo: number): Promise<void> {
    return new Promise<void>((done) => this.enqueue({ kind: 'fill', upTo, done }));
  }

  /** Stops all work; pending joins and fills resolve. False if it was closed already. */
  close(): boolean {
    if (this.closed) return false;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.staged = [];
    if (!this.running) this.discardJobs();
    this.settleInit(false);
    return true;
  }

  // ---------------------------------------------------------------- the job queue

  private enqueue(job: Job): void {
    if (this.closed) {
      finishJob(job);
      return;
    }
    this.jobs.push(job);
    if (job.kind === 'message') this.gapWaiter?.();
    if (!this.running) void this.runJobs();
  }

  private async runJobs(): Promise<void> {
    this.running = true;
    try {
      while (this.jobs.length > 0 && !this.closed) {
        const job = this.jobs.shift()!;
        try {
          await this.runJob(job);
        } catch (err) {
          this.host.logger.error({ err, stream: this.stream, job: job.kind }, 'stream job failed');
          if (job.kind === 'init') {
            this.settleInit(false);
            this.host.failed(this);
          } else if (job.kind === 'message' && job.message.seq !== null)
            this.retryFill(job.message.seq);
          else if (job.kind === 'fill') this.retryFill(job.upTo);
        } finally {
          finishJob(job);
        }
      }
    } finally {
      this.running = false;
      if (this.closed) this.discardJobs();
    }
  }

  private runJob(job: Job): Promise<void> | void {
    switch (job.kind) {
      case 'init':
        return this.init();
      case 'message':
        if (job.message.seq !== null && job.message.seq > this.lastSeq + 1) {
          return this.awaitGapThenAccept(job.message, job.receivedAt);
        }
        this.acceptInOrder(job.message, job.receivedAt);
        return;
      case 'join':
        return this.joinNow(job.session);
      case 'fill':
        return this.fillTo(job.upTo, performance.now()).then(() => this.flush());
    }
  }

  /**
   * A stored event known to exist could not be read (the log was unreachable):
   * try again later rather than skip it (skipped ids could never be resumed).
   */
  private retryFill(upTo: number): void {
    this.retryUpTo = Math.max(this.retryUpTo, upTo);
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      const target = this.retryUpTo;
      this.retryUpTo = 0;
      this.enqueue({ kind: 'fill', upTo: target, done: noop });
    }, FILL_RETRY_MS);
    this.retryTimer.unref();
  }

  private discardJobs(): void {
    const jobs = this.jobs;
    this.jobs = [];
    for (const job of jobs) finishJob(job);
  }

  // ---------------------------------------------------------------- ordering (see top)

  /** Step 1: subscribe first, then read the head. */
  private async init(): Promise<void> {
    await this.host.subscribe(this.stream);
    const head = await this.host.heads.read(this.stream);
    this.lastSeq = head?.lastSeq ?? 0;
    this.ready = true;
    this.settleInit(true);
  }

  /** Step 3. */
  private async joinNow(session: StreamSession): Promise<void> {
    this.flush(); // a
    if (session.ended) return;
    if (session.lastSentSeq > this.lastSeq) {
      await this.fillTo(session.lastSentSeq, performance.now()); // b
      this.flush();
    }
    await this.host.replay.sendFromLog(session, () => this.lastSeq, false); // c
    if (session.ended) return;
    session.writeGreeting(); // d
    this.live.add(session); // e
  }

  /** Step 2, a message ahead of a gap: wait briefly for the bus, read the log for the rest. */
  private async awaitGapThenAccept(message: BusMessage, receivedAt: number): Promise<void> {
    const seq = message.seq!;
    if (!this.gapQueued(seq)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.gapWaiter = null;
          resolve();
        };
        const timer = setTimeout(done, GAP_WAIT_MS);
        this.gapWaiter = () => {
          if (this.closed || this.gapQueued(seq)) done();
        };
      });
    }
    // Deliver the queued messages that close the gap, in seq order; duplicates drop out.
    const early: Extract<Job, { kind: 'message' }>[] = [];
    this.jobs = this.jobs.filter((job) => {
      const take =
        job.kind === 'message' &&
        job.message.seq !== null &&
        job.message.seq > this.lastSeq &&
        job.message.seq < seq;
      if (take) early.push(job);
      return !take;
    });
    early.sort((a, b) => a.message.seq! - b.message.seq!);
    for (const job of early) {
      if (job.message.seq === this.lastSeq + 1) this.acceptInOrder(job.message, job.receivedAt);
    }
    if (seq > this.lastSeq + 1) return this.fillGapThenAccept(message, receivedAt);
    this.acceptInOrder(message, receivedAt);
  }

  /** Whether every seq between lastSeq and `seq` is already queued as a bus message. */
  private gapQueued(seq: number): boolean {
    const queued = new Set<number>();
    for (const job of this.jobs) {
      if (job.kind === 'message' && job.message.seq !== null) queued.add(job.message.seq);
    }
    for (let s = this.lastSeq + 1; s < seq; s++) if (!queued.has(s)) return false;
    return true;
  }

  private async fillGapThenAccept(message: BusMessage, receivedAt: number): Promise<void> {
    this.host.metrics.gapFills.inc();
    await this.fillTo(message.seq! - 1, receivedAt);
    if (this.lastSeq < message.seq! - 1) {
      this.host.logger.warn(
        { stream: this.stream, from: this.lastSeq + 1, to: message.seq! - 1 },
        'events missing from the log; delivering past the gap',
      );
    }
    this.acceptInOrder(message, receivedAt);
  }

  /** Reads (lastSeq, upTo] from the log and stages it for the live sessions. */
  private async fillTo(upTo: number, receivedAt: number): Promise<void> {
    while (!this.closed && this.lastSeq < upTo) {
      const events = await this.host.log.readAfter(
        this.stream,
        this.lastSeq,
        Math.min(READ_BATCH, upTo - this.lastSeq),
      );
      if (events.length === 0 || this.closed) return;
      for (const e of events) {
        if (e.seq <= this.lastSeq || e.seq > upTo) continue;
        this.lastSeq = e.seq;
        this.stage(encodeFrame(e.seq, e.type, JSON.stringify(e.data)), e.seq, e.type, receivedAt);
      }
    }
  }

  /** Step 2, for a message that is next in order, a duplicate, or ephemeral. */
  private acceptInOrder(message: BusMessage, receivedAt: number): void {
    if (message.seq !== null) {
      if (message.seq <= this.lastSeq) return; // already delivered (relay duplicate)
      this.lastSeq = message.seq;
    }
    if (this.live.size === 0) return;
    this.stage(
      encodeFrame(message.seq, message.type, message.data),
      message.seq,
      message.type,
      receivedAt,
    );
  }

  // ---------------------------------------------------------------- staging and flush

  private stage(frame: Buffer, seq: number | null, type: string, receivedAt: number): void {
    if (this.live.size === 0) return;
    this.staged.push({ frame, seq, type, receivedAt });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flush);
    }
  }

  /** Step 4: the staged frames, encoded once, to every live session in one write each. */
  private readonly flush = (): void => {
    this.flushScheduled = false;
    const staged = this.staged;
    if (staged.length === 0) return;
    this.staged = [];
    if (this.closed || this.live.size === 0) return;
    writeStaged(staged, this.live, this.host.metrics);
  };
}

function finishJob(job: Job): void {
  if (job.kind === 'join' || job.kind === 'fill') job.done();
}
