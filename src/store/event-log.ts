import type { Db, SqlQuery, Tx } from './prisma';
import type {
  StoredEventData,
  EventLogReader,
  Outbox,
  StoredEvent,
  StoredEventType,
  StreamHeadInfo,
} from '../events/types';
import type { NewEvent } from '../domain/repositories';

interface EventRow {
  stream: string;
  /** bigint through Prisma, a decimal string through pg. */
  seq: bigint | string;
  type: string;
  data: StoredEventData;
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
      INSERT INTO stream_events (stream, seq, type, data, comment_id)
      SELECT ${e.stream}, last_seq, ${e.type}, ${JSON.stringify(e.data)}::jsonb,
             ${e.commentId}::int
      FROM head
      RETURNING seq`;
    out[i] = { stream: e.stream, seq: Number(rows[0]!.seq), type: e.type, data: e.data };
  }
  return out;
}

/**
 * Rewrites the stored events of the given comments inside the caller's transaction: how an
 * edit or a delete takes superseded or deleted content out of the history that replays,
 * gap fills and the relay serve. Ids, order and types stay; `revise` returns the new data,
 * or the same object to leave an event as it is. Returns how many events changed.
 *
 * Lock order: called after the comments are locked and before any stream head is, it locks
 * the events in (stream, seq) order. The relay's marking and pruning skip locked events
 * instead of waiting, so they cannot deadlock with it.
 */
export async function rewriteCommentEvents(
  tx: Tx,
  commentIds: number[],
  revise: (event: StoredEvent) => StoredEventData,
): Promise<number> {
  if (commentIds.length === 0) return 0;
  const rows = await tx.$queryRaw<EventRow[]>`
    SELECT stream, seq, type, data FROM stream_events
    WHERE comment_id = ANY(${commentIds}::int[])
    ORDER BY stream, seq FOR UPDATE`;
  const streams: string[] = [];
  const seqs: bigint[] = [];
  const data: string[] = [];
  for (const row of rows) {
    const revised = revise(toEvent(row));
    if (revised === row.data) continue;
    streams.push(row.stream);
    seqs.push(BigInt(row.seq));
    data.push(JSON.stringify(revised));
  }
  if (streams.length === 0) return 0;
  await tx.$executeRaw`
    UPDATE stream_events SET data = r.data::jsonb
    FROM unnest(${streams}::varchar[], ${seqs}::bigint[], ${data}::text[]) AS r(stream, seq, data)
    WHERE stream_events.stream = r.stream AND stream_events.seq = r.seq`;
  return streams.length;
}

/** Read side of the log plus the relay's outbox operations, over PostgreSQL. */
export class PrismaEventLog implements EventLogReader, Outbox {
  constructor(
    private readonly db: Db,
    /**
     * The relay's and the streams' frequent statements run here: on a replica, Prisma's pool
     * without its layer (Prisma's mapping cost as much CPU as the statement's own I/O; the
     * relay marks every 200 ms under load). Defaults to the same SQL through Prisma.
     */
    private readonly query: SqlQuery = prismaQuery(db),
  ) {}

  async readAfter(stream: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    const rows = await this.query<EventRow>(
      `SELECT stream, seq, type, data FROM stream_events
       WHERE stream = $1::varchar AND seq > $2::bigint
       ORDER BY seq ASC LIMIT $3::int`,
      [stream, afterSeq, limit],
    );
    return rows.map(toEvent);
  }

  async heads(streams: string[]): Promise<Map<string, StreamHeadInfo>> {
    const map = new Map<string, StreamHeadInfo>();
    if (streams.length === 0) return map;
    const rows = await this.query<{
      stream: string;
      last_seq: bigint | string;
      retained_from: bigint | string;
    }>(
      `SELECT stream, last_seq, retained_from FROM stream_heads WHERE stream = ANY($1::varchar[])`,
      [streams],
    );
    for (const r of rows) {
      map.set(r.stream, { lastSeq: Number(r.last_seq), retainedFrom: Number(r.retained_from) });
    }
    return map;
  }

  async unpublished(olderThanMs: number, limit: number): Promise<StoredEvent[]> {
    const rows = await this.query<EventRow>(
      `SELECT stream, seq, type, data FROM stream_events
       WHERE published_at IS NULL
         AND created_at < now() - make_interval(secs => $1::float8)
       ORDER BY created_at ASC, stream ASC, seq ASC LIMIT $2::int`,
      [olderThanMs / 1000, limit],
    );
    return rows.map(toEvent);
  }

  async markPublished(events: Pick<StoredEvent, 'stream' | 'seq'>[]): Promise<void> {
    if (events.length === 0) return;
    const streams = events.map((e) => e.stream);
    const seqs = events.map((e) => e.seq);
    // Events locked by an edit or a delete rewriting them are skipped, never waited for (lock
    // order, see rewriteCommentEvents): they stay unpublished and the relay publishes them
    // again, which subscribers ignore as duplicates.
    await this.query(
      `UPDATE stream_events SET published_at = now()
       FROM (
         SELECT e.stream, e.seq FROM stream_events e
         JOIN unnest($1::varchar[], $2::bigint[]) AS p(stream, seq)
           ON e.stream = p.stream AND e.seq = p.seq
         WHERE e.published_at IS NULL
         FOR UPDATE OF e SKIP LOCKED
       ) AS l
       WHERE stream_events.stream = l.stream AND stream_events.seq = l.seq`,
      [streams, seqs],
    );
  }

  /**
   * Drops events older than `before` and advances each touched stream's
   * retained_from past the highest pruned seq, so a resume from below it gets `reset`.
   *
   * Lock order: events being rewritten by an edit or a delete are skipped (pruned next time),
   * never waited for; stream heads are locked in sorted order, as writers lock them.
   */
  async pruneBefore(before: Date): Promise<number> {
    const rows = await this.db.$queryRaw<{ pruned: bigint }[]>`
      WITH doomed AS MATERIALIZED (
        SELECT stream, seq FROM stream_events WHERE created_at < ${before}
        FOR UPDATE SKIP LOCKED
      ), gone AS (
        DELETE FROM stream_events e USING doomed d
        WHERE e.stream = d.stream AND e.seq = d.seq RETURNING e.stream, e.seq
      ), tops AS (
        SELECT stream, max(seq) AS top, count(*) AS n FROM gone GROUP BY stream
      ), locked AS MATERIALIZED (
        SELECT h.stream FROM stream_heads h JOIN tops USING (stream)
        ORDER BY h.stream FOR UPDATE OF h
      ), moved AS (
        UPDATE stream_heads h SET retained_from = GREATEST(h.retained_from, tops.top + 1)
        FROM tops JOIN locked USING (stream) WHERE h.stream = tops.stream RETURNING tops.n
      )
      SELECT COALESCE(sum(n), 0)::bigint AS pruned FROM moved`;
    return Number(rows[0]?.pruned ?? 0);
  }
}

/** `SqlQuery` through Prisma (tools and tests that hold only a Prisma client). */
function prismaQuery(db: Db): SqlQuery {
  return <R>(text: string, values: unknown[]) => db.$queryRawUnsafe<R[]>(text, ...values);
}
