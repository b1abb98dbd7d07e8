import type { Bus } from '../../src/bus/types';
import type {
  BusMessage,
  EventLogReader,
  Outbox,
  StoredEvent,
  StoredEventData,
  StoredEventType,
  StreamHeadInfo,
} from '../../src/events/types';

/**
 * In-memory stand-ins for the bus and the event log, for unit tests of the
 * stream hub and the outbox relay. Both record their calls into a shared
 * journal so tests can assert the order of operations across them.
 */

export class FakeBus implements Bus {
  readonly subscribed = new Set<string>();
  readonly published: BusMessage[] = [];
  /** When true, publish() rejects as if the transport were down. */
  failing = false;
  /** publish() calls that still succeed before it starts failing (undefined: no limit). */
  succeedBeforeFailing: number | undefined;
  /** When false, published messages are recorded but not delivered (a lost message). */
  deliverPublished = true;
  /** publish() calls that were refused because the bus was failing. */
  failedPublishes = 0;
  private handler: ((message: BusMessage) => void) | null = null;
  private readonly reconnectHandlers: (() => void)[] = [];

  constructor(readonly journal: string[] = []) {}

  async publish(message: BusMessage): Promise<void> {
    if (this.succeedBeforeFailing !== undefined) {
      if (this.succeedBeforeFailing <= 0) this.failing = true;
      else this.succeedBeforeFailing--;
    }
    if (this.failing) {
      this.failedPublishes++;
      throw new Error('bus down');
    }
    this.published.push(message);
    if (this.deliverPublished) setImmediate(() => this.deliver(message));
  }

  async subscribe(stream: string): Promise<void> {
    this.journal.push(`subscribe:${stream}`);
    this.subscribed.add(stream);
  }

  async unsubscribe(stream: string): Promise<void> {
    this.journal.push(`unsubscribe:${stream}`);
    this.subscribed.delete(stream);
  }

  onMessage(handler: (message: BusMessage) => void): void {
    this.handler = handler;
  }

  onReconnect(handler: () => void): void {
    this.reconnectHandlers.push(handler);
  }

  async isHealthy(): Promise<boolean> {
    return !this.failing;
  }

  async close(): Promise<void> {
    this.subscribed.clear();
  }

  /** Hands a message to the receiver now, as the transport would (only on subscribed channels). */
  deliver(message: BusMessage): void {
    if (this.subscribed.has(message.stream)) this.handler?.(message);
  }

  /** Delivers a stored event as the relay would have published it. */
  deliverEvent(event: StoredEvent): void {
    this.deliver(toBusMessage(event));
  }

  simulateReconnect(): void {
    for (const h of this.reconnectHandlers) h();
  }
}

export const toBusMessage = (e: StoredEvent): BusMessage => ({
  stream: e.stream,
  seq: e.seq,
  type: e.type,
  data: JSON.stringify(e.data),
});

interface Row extends StoredEvent {
  createdAt: number;
  published: boolean;
}

interface FakeStream {
  lastSeq: number;
  retainedFrom: number;
  rows: Row[];
}

export class FakeEventLog implements EventLogReader, Outbox {
  private readonly streams = new Map<string, FakeStream>();
  /** Added to every read, to widen race windows. */
  readDelayMs = 0;
  /** When true, reads reject as if the database were unreachable. */
  failReads = false;
  /** Reads refused because `failReads` was set. */
  failedReads = 0;
  readonly pruneCalls: Date[] = [];
  headsCalls = 0;

  constructor(readonly journal: string[] = []) {}

  /** Commits one event (unpublished), as a write transaction would. */
  append(
    stream: string,
    type: StoredEventType,
    data: Record<string, unknown> = {},
    createdAt = Date.now(),
  ): StoredEvent {
    const s = this.streamOf(stream);
    const seq = ++s.lastSeq;
    const trackId = stream.startsWith('track:') ? stream.slice('track:'.length) : 'tX';
    const event: StoredEvent = {
      stream,
      seq,
      type,
      // A stand-in payload: the hub and the relay pass `data` on without looking inside.
      data: { type, track_id: trackId, n: seq, ...data } as unknown as StoredEventData,
    };
    s.rows.push({ ...event, createdAt, published: false });
    return event;
  }

  isPublished(stream: string, seq: number): boolean {
    return this.streams.get(stream)?.rows.find((r) => r.seq === seq)?.published ?? false;
  }

  async readAfter(stream: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    await this.delay();
    this.journal.push(`readAfter:${stream}:${afterSeq}`);
    const s = this.streams.get(stream);
    if (!s) return [];
    return s.rows
      .filter((r) => r.seq > afterSeq)
      .slice(0, limit)
      .map(({ stream: st, seq, type, data }) => ({ stream: st, seq, type, data }));
  }

  async heads(streams: string[]): Promise<Map<string, StreamHeadInfo>> {
    await this.delay();
    this.headsCalls++;
    this.journal.push(`heads:${streams.join(',')}`);
    const result = new Map<string, StreamHeadInfo>();
    for (const name of streams) {
      const s = this.streams.get(name);
      if (s) result.set(name, { lastSeq: s.lastSeq, retainedFrom: s.retainedFrom });
    }
    return result;
  }

  async unpublished(olderThanMs: number, limit: number): Promise<StoredEvent[]> {
    const cutoff = Date.now() - olderThanMs;
    const rows: Row[] = [];
    for (const s of this.streams.values())
      rows.push(...s.rows.filter((r) => !r.published && r.createdAt <= cutoff));
    rows.sort((a, b) => a.createdAt - b.createdAt || a.seq - b.seq);
    return rows.slice(0, limit).map(({ stream, seq, type, data }) => ({ stream, seq, type, data }));
  }

  async markPublished(events: Pick<StoredEvent, 'stream' | 'seq'>[]): Promise<void> {
    for (const e of events) {
      const row = this.streams.get(e.stream)?.rows.find((r) => r.seq === e.seq);
      if (row) row.published = true;
    }
  }

  async pruneBefore(before: Date): Promise<number> {
    this.pruneCalls.push(before);
    let removed = 0;
    for (const s of this.streams.values()) {
      const kept = s.rows.filter((r) => r.createdAt >= before.getTime());
      removed += s.rows.length - kept.length;
      s.rows = kept;
      s.retainedFrom = kept[0]?.seq ?? s.lastSeq + 1;
    }
    return removed;
  }

  private streamOf(stream: string): FakeStream {
    let s = this.streams.get(stream);
    if (!s) {
      s = { lastSeq: 0, retainedFrom: 1, rows: [] };
      this.streams.set(stream, s);
    }
    return s;
  }

  private async delay(): Promise<void> {
    if (this.readDelayMs > 0) await new Promise((r) => setTimeout(r, this.readDelayMs));
    if (this.failReads) {
      this.failedReads++;
      throw new Error('database unreachable');
    }
  }
}
