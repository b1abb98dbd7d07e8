import type pino from 'pino';
import type { Bus } from '../bus/types';
import type { Outbox, StoredEvent } from '../events/types';
import type { Metrics } from '../metrics/metrics';

export interface OutboxRelayOptions {
  bus: Bus;
  outbox: Outbox;
  logger: pino.Logger;
  metrics: Metrics;
  /** How often the relay looks for unpublished events. */
  intervalMs?: number;
  /** Only events older than this are relayed: younger ones are still being published by their committer. */
  graceMs?: number;
  /** Events older than this are pruned from the log. */
  retentionMs: number;
  pruneIntervalMs?: number;
}

type Source = 'commit' | 'relay';

/**
 * Marks are written in batches: after this many, or this long after the first. One UPDATE per
 * 200 ms instead of one per commit; far below the relay's grace, so nothing is republished.
 */
const MARK_BATCH = 200;
const MARK_DELAY_MS = 200;
/** Unpublished events fetched per relay query. */
const RELAY_BATCH = 500;
/** A backlog is drained in consecutive queries up to this many per tick. */
const MAX_BATCHES_PER_TICK = 20;

/**
 * The transactional outbox's publisher. Every committed event is a log row
 * with a published flag: the committing request publishes it right away; every
 * replica's relay republishes rows still unpublished after `graceMs` (the
 * committer died or the bus was down). Duplicates on the bus are harmless:
 * hubs ignore seq <= what they delivered.
 */
export class OutboxRelay {
  private readonly bus: Bus;
  private readonly outbox: Outbox;
  private readonly logger: pino.Logger;
  private readonly metrics: Metrics;
  private readonly intervalMs: number;
  private readonly graceMs: number;
  private readonly retentionMs: number;
  private readonly pruneIntervalMs: number;

  private pendingMarks: Pick<StoredEvent, 'stream' | 'seq'>[] = [];
  private markTimer: NodeJS.Timeout | null = null;
  private markInFlight: Promise<void> = Promise.resolve();
  private relayTimer: NodeJS.Timeout | null = null;
  private pruneTimer: NodeJS.Timeout | null = null;
  private tickInFlight: Promise<void> | null = null;
  private pruneInFlight: Promise<void> | null = null;
  private stopped = false;

  constructor(opts: OutboxRelayOptions) {
    this.bus = opts.bus;
    this.outbox = opts.outbox;
    this.logger = opts.logger.child({ component: 'outbox-relay' });
    this.metrics = opts.metrics;
    this.intervalMs = opts.intervalMs ?? 1000;
    this.graceMs = opts.graceMs ?? 2000;
    this.retentionMs = opts.retentionMs;
    this.pruneIntervalMs = opts.pruneIntervalMs ?? 60_000;
  }

  /** Publishes one transaction's events in order, then marks them published (batched). Never throws. */
  async publishCommitted(events: StoredEvent[]): Promise<void> {
    const published = await this.publishInOrder(events, 'commit');
    if (published.length === 0) return;
    for (const e of published) this.pendingMarks.push({ stream: e.stream, seq: e.seq });
    if (this.pendingMarks.length >= MARK_BATCH) {
      void this.flushMarks();
    } else if (!this.markTimer) {
      this.markTimer = setTimeout(() => void this.flushMarks(), MARK_DELAY_MS);
      this.markTimer.unref();
    }
  }

  start(): void {
    this.stopped = false;
    this.relayTimer ??= setInterval(() => void this.relayTick(), this.intervalMs);
    this.relayTimer.unref();
    this.pruneTimer ??= setInterval(() => void this.pruneTick(), this.pruneIntervalMs);
    this.pruneTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.relayTimer) clearInterval(this.relayTimer);
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.relayTimer = null;
    this.pruneTimer = null;
    await Promise.all([this.tickInFlight, this.pruneInFlight]);
    await this.flushMarks();
  }

  /** One relay pass: publish what its committers left unpublished. Exposed for tests and tools. */
  relayTick(): Promise<void> {
    // Ticks never overlap: a slow database must not stack up passes.
    this.tickInFlight ??= this.relayBacklog().finally(() => {
      this.tickInFlight = null;
    });
    return this.tickInFlight;
  }

  /** One prune pass. Exposed for tests and tools. */
  pruneTick(): Promise<void> {
    this.pruneInFlight ??= this.prune().finally(() => {
      this.pruneInFlight = null;
    });
    return this.pruneInFlight;
  }

  private async relayBacklog(): Promise<void> {
    try {
      for (let i = 0; i < MAX_BATCHES_PER_TICK && !this.stopped; i++) {
        const events = await this.outbox.unpublished(this.graceMs, RELAY_BATCH);
        if (events.length === 0) return;
        const published = await this.publishInOrder(events, 'relay');
        if (published.length > 0)
          await this.outbox.markPublished(published.map(({ stream, seq }) => ({ stream, seq })));
        if (published.length < events.length || events.length < RELAY_BATCH) return;
      }
    } catch (err) {
      this.logger.warn({ err }, 'outbox relay pass failed; retrying next interval');
    }
  }

  private async prune(): Promise<void> {
    try {
      const removed = await this.outbox.pruneBefore(new Date(Date.now() - this.retentionMs));
      if (removed > 0) this.logger.info({ removed }, 'pruned events past retention');
    } catch (err) {
      this.logger.warn({ err }, 'event pruning failed; retrying next interval');
    }
  }

  /**
   * Publishes in order without waiting for each reply (one connection keeps the order, and a
   * commit's events go out in one pipeline instead of one round trip each). Returns the
   * events the bus confirmed; after a failure a later event may still have gone out, which is
   * harmless: a hub that sees the gap reads the missing ids from the log.
   */
  private async publishInOrder(events: StoredEvent[], source: Source): Promise<StoredEvent[]> {
    const outcomes = await Promise.allSettled(
      events.map((e) =>
        this.bus.publish({
          stream: e.stream,
          seq: e.seq,
          type: e.type,
          data: JSON.stringify(e.data),
        }),
      ),
    );
    const published: StoredEvent[] = [];
    let failure: { err: unknown; event: StoredEvent } | undefined;
    outcomes.forEach((outcome, i) => {
      const e = events[i]!;
      if (outcome.status === 'rejected') {
        failure ??= { err: outcome.reason, event: e };
        return;
      }
      this.metrics.eventsPublished.inc({ type: e.type, source });
      published.push(e);
    });
    if (failure) {
      this.logger.warn(
        { err: failure.err, stream: failure.event.stream, seq: failure.event.seq, source },
        'publish failed; the relay will publish the rest',
      );
    }
    return published;
  }

  private flushMarks(): Promise<void> {
    if (this.markTimer) clearTimeout(this.markTimer);
    this.markTimer = null;
    const batch = this.pendingMarks;
    this.pendingMarks = [];
    // Chained so stop() can wait for every mark write.
    this.markInFlight = this.markInFlight.then(async () => {
      if (batch.length === 0) return;
      try {
        await this.outbox.markPublished(batch);
      } catch (err) {
        // Harmless: the rows stay unpublished and the relay publishes them again.
        this.logger.warn({ err, count: batch.length }, 'marking events published failed');
      }
    });
    return this.markInFlight;
  }
}
