import type { Db, Tx } from './prisma';
import type {
  EventData,
  EventLogReader,
  Outbox,
  StoredEvent,
  StoredEventType,
  StreamHeadInfo,
} from '../events/types';

/** An event about to be appended inside a change's transaction. */
export interface NewEvent {
  stream: string;
  type: StoredEventType;
  data: EventData;
}

interface EventRow {
  stream: string;
  seq: bigint;
  type: string;
  data: EventData;
}

const toEvent = (r: EventRow): StoredEvent => ({
  stream: r.stream,
  seq: Number(r.seq),
  type: r.type as StoredEventType,
  data: r.data,
});

/**
 * Appends events inside the caller's transaction. The head row's UPDATE lock
 * is held until commit, so two writers of one stream are serialised and seqs
 * are handed out in commit order. Streams are locked in sorted order so two
 * transactions touching the same streams cannot deadlock.
 */
export async function appendEvents(tx: Tx, events: NewEvent[]): Promise<StoredEvent[]> {
  const ordered = events
    .map((e, i) => ({ e, i }))
    .sort((a, b) => (a.e.stream < b.e.stream ? -1 : a.e.stream > b.e.stream ? 1 : a.i - b.i));
  const out: StoredEvent[] = new Array(events.length);
  for (const { e, i } of ordered) {
    const rows = await tx.$queryRaw<{ seq: bigint }[]>`
      WITH head AS (
        INSERT INTO stream_heads (stream, last_seq) VALUES (${e.stream}, 1)
        ON CONFLICT (stream) DO UPDATE SET last_seq = stream_heads.last_seq + 1
        RETURNING last_seq
      )
      INSERT INTO stream_events (stream, seq, type, data)
      SELECT ${e.stream}, last_seq, ${e.type}, ${JSON.stringify(e.data)}::jsonb FROM head
      RETURNING seq`;
    out[i] = { stream: e.stream, seq: Number(rows[0]!.seq), type: e.type, data: e.data };
  }
  return out;
}

/** Read side of the log plus the relay's outbox operations, over PostgreSQL. */
export class PrismaEventLog implements EventLogReader, Outbox {
  constructor(private readonly db: Db) {}

  async readAfter(stream: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    const rows = await this.db.$queryRaw<EventRow[]>`
      SELECT stream, seq, type, data FROM stream_events
      WHERE stream = ${stream} AND seq > ${afterSeq}
      ORDER BY seq ASC LIMIT ${limit}`;
    return rows.map(toEvent);
  }

  async heads(streams: string[]): Promise<Map<string, StreamHeadInfo>> {
    const map = new Map<string, StreamHeadInfo>();
    if (streams.length === 0) return map;
    const rows = await this.db.$queryRaw<
      { stream: string; last_seq: bigint; retained_from: bigint }[]
    >`SELECT stream, last_seq, retained_from FROM stream_heads WHERE stream = ANY(${streams})`;
    for (const r of rows) {
      map.set(r.stream, { lastSeq: Number(r.last_seq), retainedFrom: Number(r.retained_from) });
    }
    return map;
  }

  async unpublished(olderThanMs: number, limit: number): Promise<StoredEvent[]> {
    const rows = await this.db.$queryRaw<EventRow[]>`
      SELECT stream, seq, type, data FROM stream_events
      WHERE published_at IS NULL
        AND created_at < now() - make_interval(secs => ${olderThanMs / 1000})
      ORDER BY created_at ASC, stream ASC, seq ASC LIMIT ${limit}`;
    return rows.map(toEvent);
  }

  async markPublished(events: Pick<StoredEvent, 'stream' | 'seq'>[]): Promise<void> {
    if (events.length === 0) return;
    const streams = events.map((e) => e.stream);
    const seqs = events.map((e) => BigInt(e.seq));
    await this.db.$executeRaw`
      UPDATE stream_events SET published_at = now()
      FROM unnest(${streams}::varchar[], ${seqs}::bigint[]) AS p(stream, seq)
      WHERE stream_events.stream = p.stream AND stream_events.seq = p.seq
        AND stream_events.published_at IS NULL`;
  }

  /**
   * Drops events older than `before` and advances each touched stream's
   * retained_from past the highest pruned seq, so a resume from below it gets `reset`.
   */
  async pruneBefore(before: Date): Promise<number> {
    const rows = await this.db.$queryRaw<{ pruned: bigint }[]>`
      WITH gone AS (
        DELETE FROM stream_events WHERE created_at < ${before} RETURNING stream, seq
      ), tops AS (
        SELECT stream, max(seq) AS top, count(*) AS n FROM gone GROUP BY stream
      ), moved AS (
        UPDATE stream_heads h SET retained_from = GREATEST(h.retained_from, tops.top + 1)
        FROM tops WHERE h.stream = tops.stream RETURNING tops.n
      )
      SELECT COALESCE(sum(n), 0)::bigint AS pruned FROM moved`;
    return Number(rows[0]?.pruned ?? 0);
  }
}
