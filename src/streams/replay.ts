import type { EventLogReader, StoredEvent, StreamHeadInfo } from '../events/types';
import type { Metrics } from '../metrics/metrics';
import type { BatchedHeadReads } from './head-reads';
import { GAP, drained, resetFrame, storedBatches } from './replay-batches';
import type { StreamSession } from './session';

/** Events read from the log per query (replay, gap fill, catch-up). */
export const READ_BATCH = 500;
/**
 * Replayed events go out in writes of at most this many bytes, and the next write waits for
 * the socket to drain to this many unsent bytes (bounded by half of maxBufferBytes).
 */
const REPLAY_WRITE_BYTES = 64 * 1024;
/** A replaying client that does not read for this long is dropped as slow. */
const REPLAY_STALL_MS = 30_000;

/** A Last-Event-ID we can resume from: a decimal seq (at most 15 digits, so exact); else null. */
export function parseLastEventId(raw: string): number | null {
  return /^\d{1,15}$/.test(raw) ? Number(raw) : null;
}

/** Why a Last-Event-ID cannot be resumed from against the stream's head, or null if it can. */
export function resetReason(lastEventId: number | null, head: StreamHeadInfo): string | null {
  if (lastEventId === null) return 'invalid_last_event_id';
  if (lastEventId < head.retainedFrom - 1) return 'history_expired';
  if (lastEventId > head.lastSeq) return 'unknown_last_event_id';
  return null;
}

export interface ReplayOptions {
  log: Pick<EventLogReader, 'readAfter'>;
  heads: Pick<BatchedHeadReads, 'read'>;
  metrics: Pick<Metrics, 'replays' | 'resets' | 'eventsDelivered'>;
  maxBufferBytes: number;
}

/**
 * Resuming from `Last-Event-ID`: validating the id against the stream's head, writing the
 * stored events that follow it from the log, and `reset` where history no longer covers it.
 * One per hub; the state of each resume lives on its session.
 */
export class Replay {
  private readonly log: ReplayOptions['log'];
  private readonly heads: ReplayOptions['heads'];
  private readonly metrics: ReplayOptions['metrics'];
  private readonly writeBytes: number;

  constructor(opts: ReplayOptions) {
    this.log = opts.log;
    this.heads = opts.heads;
    this.metrics = opts.metrics;
    this.writeBytes = Math.min(REPLAY_WRITE_BYTES, opts.maxBufferBytes / 2);
  }

  /**
   * Phase 1 of a resume, outside the stream's queue so a long replay to one client never
   * holds up live delivery to the others: validate the id, then stream the log up to the head
   * read now, waiting for the socket to drain. The join (inside the queue, see channel.ts)
   * sends whatever arrived meanwhile.
   */
  async resume(session: StreamSession, raw: string): Promise<void> {
    const channel = session.channel;
    const lastEventId = parseLastEventId(raw);
    let head: StreamHeadInfo = { lastSeq: 0, retainedFrom: 1 };
    if (lastEventId !== null) head = (await this.heads.read(channel.stream)) ?? head;
    if (session.ended) return;
    const reason = resetReason(lastEventId, head);
    if (reason !== null || lastEventId === null) {
      this.reset(session, reason ?? 'invalid_last_event_id');
      return;
    }
    this.metrics.replays.inc();
    session.resumed = true;
    session.lastSentSeq = lastEventId;
    // On past the head to what arrived live meanwhile: the join, unpaced, sends only the rest.
    await this.sendFromLog(session, () => Math.max(head.lastSeq, channel.lastSeq), true);
  }

  /**
   * Writes the stored events after the session's position up to `upTo()` (read again after
   * each batch: it may move), while the session is resuming. When `paced`, each write waits
   * for the socket to drain; unpaced (inside the stream's queue) a client that falls behind is
   * dropped by the buffer limit instead.
   */
  async sendFromLog(session: StreamSession, upTo: () => number, paced: boolean): Promise<void> {
    const stream = session.channel.stream;
    while (!session.ended && session.resumed && session.lastSentSeq < upTo()) {
      const events = await this.log.readAfter(stream, session.lastSentSeq, READ_BATCH);
      if (session.ended) return;
      await this.writeStored(session, events, upTo(), paced);
    }
  }

  /** Ends the resume: `reset` goes out as the session joins live (see StreamSession.greeting). */
  reset(session: StreamSession, reason: string): void {
    this.metrics.resets.inc();
    this.metrics.eventsDelivered.inc({ type: 'reset' });
    session.resumed = false;
    session.greeting = resetFrame(session.channel.trackId, reason);
  }

  /**
   * Writes the stored events with lastSentSeq < seq <= upTo, in writes bounded in bytes; when
   * `paced`, each waits for the socket to drain. Where the seqs break (pruned after the head
   * was read), the resume ends with `reset`: the client refetches, then gets live events.
   */
  private async writeStored(
    session: StreamSession,
    events: StoredEvent[],
    upTo: number,
    paced: boolean,
  ): Promise<void> {
    for (const batch of storedBatches(events, session.lastSentSeq, upTo, this.writeBytes)) {
      if (batch === GAP) {
        this.reset(session, 'history_expired');
        return;
      }
      if (!session.write(batch.text)) return;
      session.lastSentSeq = batch.lastSeq;
      for (const type of batch.types) this.metrics.eventsDelivered.inc({ type });
      if (paced && !(await drained(session.socket, this.writeBytes, REPLAY_STALL_MS))) {
        if (!session.ended) session.channel.host.dropSlow(session);
        return;
      }
    }
  }
}
