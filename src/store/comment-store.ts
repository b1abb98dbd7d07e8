import type { Db, SqlQuery, Tx } from './prisma';
import { appendEvents, rewriteCommentEvents } from './event-log';
import { isForeignKeyViolation } from './db-errors';
import type { StoredEventData, StoredEvent } from '../events/types';
import { invalidParent } from '../domain/errors';
import {
  commentDraft,
  type Committed,
  type CommentRepository,
  type DataPath,
  type NewComment,
  type NewEvent,
} from '../domain/repositories';
import type { Comment, CommentCursor, CommentOrder } from '../domain/types';
import { Prisma } from '../generated/prisma/client';

const commentInclude = {
  user: { select: { id: true, username: true } },
  mentions: {
    select: { user: { select: { id: true, username: true } } },
    orderBy: { userId: 'asc' },
  },
} satisfies Prisma.CommentInclude;

type CommentRow = Prisma.CommentGetPayload<{ include: typeof commentInclude }>;

const toComment = (r: CommentRow): Comment => ({
  id: r.id,
  track_id: r.trackId,
  user: { id: r.user.id, username: r.user.username },
  content: r.content,
  timestamp: r.timestamp,
  parent_id: r.parentId,
  mentions: r.mentions.map((m) => ({ id: m.user.id, username: m.user.username })),
  is_edited: r.isEdited,
  last_edited_at: r.lastEditedAt ? r.lastEditedAt.toISOString() : null,
  created_at: r.createdAt.toISOString(),
});

/**
 * The comment, its mentions and its events in one statement. Parameters: $1 track, $2 author,
 * $3 content, $4 timestamp, $5 parent (or null), $6 created_at, $7 mentioned user ids, and the
 * events as parallel arrays: $8 streams, $9 types, $10 data (JSON text), and $11 the path in
 * each event's data where the new comment's id goes (the caller's: the payload is not ours).
 *
 * Lock order (the same in every write: comment rows, then stored events, then stream heads):
 * the parent's key-share lock is taken explicitly, before any stream head. The foreign key
 * would take it only at the end of the statement, after the heads, the reverse of a delete's
 * order: a reply racing its parent's delete then deadlocked. Waiting here for a delete of the
 * parent, the reply finds no parent once it committed and inserts nothing (invalid_parent).
 */
const CREATE_COMMENT_SQL = `
  WITH c AS (
    INSERT INTO comments (track_id, user_id, content, "timestamp", parent_id, created_at)
    SELECT $1::text, $2::int, $3::text, $4::float8, $5::int, $6::timestamptz
    WHERE $5::int IS NULL OR EXISTS (
      SELECT 1 FROM comments p WHERE p.id = $5::int AND p.track_id = $1::text FOR KEY SHARE)
    RETURNING id
  ), m AS (
    INSERT INTO comment_mentions (comment_id, user_id)
    SELECT c.id, u FROM c, unnest($7::int[]) AS u
  ), ev AS (
    SELECT e.stream, e.type, jsonb_set(e.data::jsonb, $11::text[], to_jsonb(c.id)) AS data,
           c.id AS comment_id, e.ord,
           row_number() OVER (PARTITION BY e.stream ORDER BY e.ord) AS k,
           count(*) OVER (PARTITION BY e.stream) AS n
    FROM c, unnest($8::varchar[], $9::varchar[], $10::text[]) WITH ORDINALITY AS e(stream, type, data, ord)
  ), h AS (
    INSERT INTO stream_heads AS sh (stream, last_seq)
    SELECT stream, max(n) FROM ev GROUP BY stream ORDER BY stream
    ON CONFLICT (stream) DO UPDATE SET last_seq = sh.last_seq + EXCLUDED.last_seq
    RETURNING stream, last_seq
  ), ins AS (
    INSERT INTO stream_events (stream, seq, type, data, comment_id)
    SELECT ev.stream, h.last_seq - ev.n + ev.k, ev.type, ev.data, ev.comment_id
    FROM ev JOIN h USING (stream)
  )
  SELECT c.id AS comment_id, ev.ord, h.last_seq - ev.n + ev.k AS seq
  FROM c, ev JOIN h USING (stream)`;

/** PostgreSQL plans a prepared statement for its values the first five times, then generically. */
const PREPARE_RUNS = 6;

/** Comments and their events over PostgreSQL: each write and its events in one transaction. */
export class CommentStore implements CommentRepository {
  constructor(
    private readonly db: Db,
    /** The hot insert's statement runs here, on Prisma's own pool without its layer. */
    private readonly query: SqlQuery,
  ) {}

  /**
   * Parses and plans the hot insert on a connection without writing anything: parent 0 does
   * not exist, so the statement inserts no comment and hence no mention, event or head.
   * Run a few times so the plan cache is past its first custom plans before real requests.
   */
  static async prepareOn(query: SqlQuery): Promise<void> {
    for (let i = 0; i < PREPARE_RUNS; i++) {
      await query(CREATE_COMMENT_SQL, ['', 0, '', 0, 0, new Date(), [], [], [], [], ['id']]);
    }
  }

  async list(
    trackId: string,
    opts: { order: CommentOrder; limit: number; after: CommentCursor | null },
  ): Promise<Comment[]> {
    const { order, limit, after } = opts;
    let where: Prisma.CommentWhereInput = { trackId };
    if (after && order === 'timestamp') {
      where = {
        trackId,
        OR: [
          { timestamp: { gt: after.timestamp } },
          { timestamp: after.timestamp, id: { gt: after.id } },
        ],
      };
    } else if (after) {
      where = { trackId, id: { gt: after.id } };
    }
    const rows = await this.db.comment.findMany({
      where,
      include: commentInclude,
      orderBy: order === 'timestamp' ? [{ timestamp: 'asc' }, { id: 'asc' }] : [{ id: 'asc' }],
      take: limit,
    });
    return rows.map(toComment);
  }

  async find(id: number): Promise<Comment | null> {
    const row = await this.db.comment.findUnique({ where: { id }, include: commentInclude });
    return row ? toComment(row) : null;
  }

  /**
   * Inserts the comment, its mentions and its events in ONE statement (one round trip, no
   * interactive transaction): the hot write path. Stream heads stay locked only for the
   * statement, so comments on one track (and mentions of one album creator) don't queue
   * behind each other's network round trips. The comment's id, known only to the database,
   * is written into each event's data at `idPath` by the same statement.
   */
  async create(
    input: NewComment,
    eventsFor: (comment: Comment) => NewEvent[],
    idPath: DataPath,
  ): Promise<Committed<Comment>> {
    const createdAt = new Date();
    const comment = commentDraft(input, createdAt);
    const events = eventsFor(comment);
    let rows: { comment_id: number; ord: string; seq: string }[];
    try {
      rows = await this.query(CREATE_COMMENT_SQL, [
        input.trackId,
        input.author.id,
        input.content,
        input.timestamp,
        input.parentId,
        createdAt,
        comment.mentions.map((u) => u.id),
        events.map((e) => e.stream),
        events.map((e) => e.type),
        events.map((e) => JSON.stringify(e.data)),
        idPath,
      ]);
    } catch (err) {
      // The parent was deleted between the check above and the foreign key's.
      if (isForeignKeyViolation(err)) throw invalidParent();
      throw err;
    }
    if (rows.length === 0) throw invalidParent();
    comment.id = rows[0]!.comment_id;
    const stored: StoredEvent[] = new Array(events.length);
    for (const r of rows) {
      const e = events[Number(r.ord) - 1]!;
      stored[Number(r.ord) - 1] = {
        stream: e.stream,
        seq: Number(r.seq),
        type: e.type,
        data: withValueAt(e.data, idPath, comment.id),
      };
    }
    return { result: comment, events: stored };
  }

  /**
   * Replaces content and the mention set; `eventsFor` learns which mentions are new.
   * `reviseEarlier` rewrites the comment's stored events to its current content, in the same
   * transaction, so no replay serves the superseded text.
   */
  async edit(
    id: number,
    input: { content: string; mentionUserIds: number[] },
    eventsFor: (comment: Comment, addedMentionIds: number[]) => NewEvent[],
    reviseEarlier: (event: StoredEvent, comment: Comment) => StoredEventData,
  ): Promise<Committed<Comment> | null> {
    return this.db.$transaction(async (tx) => {
      // Serialises edits and deletes of this comment: the mention diff below is computed from
      // what the previous edit committed, and a comment deleted meanwhile is simply not found.
      const locked = await tx.$queryRaw<{ id: number }[]>`
        SELECT id FROM comments WHERE id = ${id} FOR UPDATE`;
      if (locked.length === 0) return null;
      const before = await tx.comment.findUnique({
        where: { id },
        select: { mentions: { select: { userId: true } } },
      });
      if (!before) return null;
      const had = new Set(before.mentions.map((m) => m.userId));
      const added = input.mentionUserIds.filter((u) => !had.has(u));
      await tx.mention.deleteMany({
        where: { commentId: id, userId: { notIn: input.mentionUserIds } },
      });
      if (added.length > 0) {
        await tx.mention.createMany({ data: added.map((userId) => ({ commentId: id, userId })) });
      }
      const row = await tx.comment.update({
        where: { id },
        data: { content: input.content, isEdited: true, lastEditedAt: new Date() },
        include: commentInclude,
      });
      const comment = toComment(row);
      await rewriteCommentEvents(tx, [id], (event) => reviseEarlier(event, comment));
      return { result: comment, events: await appendEvents(tx, eventsFor(comment, added)) };
    });
  }

  /**
   * Deletes a comment and, with it, its replies (at any depth). `scrubEarlier` rewrites their
   * stored events without their content, in the same transaction ("deleted means gone").
   */
  async delete(
    id: number,
    eventsFor: (deletedIds: number[]) => NewEvent[],
    scrubEarlier: (event: StoredEvent) => StoredEventData,
  ): Promise<Committed<number[]> | null> {
    return this.db.$transaction(async (tx) => {
      // Lock order: comment rows, then their events, then stream heads (as every write).
      const ids = await lockThread(tx, id);
      if (ids.length === 0) return null;
      await tx.comment.delete({ where: { id } }); // replies go by ON DELETE CASCADE
      await rewriteCommentEvents(tx, ids, scrubEarlier);
      return { result: ids, events: await appendEvents(tx, eventsFor(ids)) };
    });
  }
}

/**
 * Locks the comment and all its descendants (FOR UPDATE) and returns their ids, parents first.
 * A reply being inserted holds a key-share lock on its parent until it commits, so once every
 * row of the thread is locked no new reply can join it; the thread is re-read after locking
 * until it is stable, so a reply that committed meanwhile is deleted *with* its event rather
 * than silently by the cascade.
 */
async function lockThread(tx: Tx, id: number): Promise<number[]> {
  let ids = await threadIds(tx, id);
  for (;;) {
    if (ids.length === 0) return ids;
    await tx.$queryRaw`SELECT id FROM comments WHERE id = ANY(${ids}::int[]) ORDER BY id FOR UPDATE`;
    const again = await threadIds(tx, id);
    if (again.length === ids.length && again.every((v, i) => v === ids[i])) return ids;
    ids = again;
  }
}

/** The comment and all its descendants, parents first (ids within a depth ascending). */
async function threadIds(tx: Tx, id: number): Promise<number[]> {
  const rows = await tx.$queryRaw<{ id: number }[]>`
    WITH RECURSIVE thread AS (
      SELECT id, 0 AS depth FROM comments WHERE id = ${id}
      UNION ALL
      SELECT c.id, t.depth + 1 FROM comments c JOIN thread t ON c.parent_id = t.id
    )
    SELECT id FROM thread ORDER BY depth, id`;
  return rows.map((r) => r.id);
}

/**
 * `data` with `value` at `path`, copying only the objects on the way; unchanged when the path's
 * parent is missing or not an object (as `jsonb_set` in the insert).
 */
export function withValueAt<T extends object>(data: T, path: DataPath, value: unknown): T {
  const set = (node: unknown, depth: number): unknown => {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return node;
    const key = path[depth]!;
    const obj = node as Record<string, unknown>;
    if (depth === path.length - 1) return { ...obj, [key]: value };
    if (!(key in obj)) return node;
    const child = set(obj[key], depth + 1);
    return child === obj[key] ? node : { ...obj, [key]: child };
  };
  return path.length === 0 ? data : (set(data, 0) as T);
}
