import type { Db, Tx } from './prisma';
import { appendEvents, type NewEvent } from './event-log';
import type { StoredEvent } from '../events/types';
import { DomainError, type Comment, type CommentCursor, type CommentOrder } from '../domain/types';
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

/** A change and the events it emits, committed together. */
export interface Committed<T> {
  result: T;
  events: StoredEvent[];
}

/**
 * Comments and their events. Every write runs in one transaction with the
 * events it emits (built by the caller from the written row), so a failed
 * request leaves no row and no event.
 */
export class CommentStore {
  constructor(private readonly db: Db) {}

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

  async create(
    input: {
      trackId: string;
      userId: number;
      content: string;
      timestamp: number;
      parentId: number | null;
      mentionUserIds: number[];
    },
    eventsFor: (comment: Comment) => NewEvent[],
  ): Promise<Committed<Comment>> {
    return this.db.$transaction(async (tx) => {
      if (input.parentId !== null) {
        // Re-checked under a key-share lock: a parent deleted since the caller looked is refused
        // as bad input (not an FK failure), and one deleted later waits for this reply to commit.
        const parent = await tx.$queryRaw<{ track_id: string }[]>`
          SELECT track_id FROM comments WHERE id = ${input.parentId} FOR KEY SHARE`;
        if (parent[0]?.track_id !== input.trackId) {
          throw new DomainError(
            400,
            'invalid_parent',
            'parent_id must name a comment on this track',
          );
        }
      }
      const row = await tx.comment.create({
        data: {
          trackId: input.trackId,
          userId: input.userId,
          content: input.content,
          timestamp: input.timestamp,
          parentId: input.parentId,
          mentions: { create: input.mentionUserIds.map((userId) => ({ userId })) },
        },
        include: commentInclude,
      });
      const comment = toComment(row);
      return { result: comment, events: await appendEvents(tx, eventsFor(comment)) };
    });
  }

  /** Replaces content and the mention set; `eventsFor` learns which mentions are new. */
  async edit(
    id: number,
    input: { content: string; mentionUserIds: number[] },
    eventsFor: (comment: Comment, addedMentionIds: number[]) => NewEvent[],
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
      return { result: comment, events: await appendEvents(tx, eventsFor(comment, added)) };
    });
  }

  /** Deletes a comment and, with it, its replies (at any depth). */
  async delete(
    id: number,
    eventsFor: (deletedIds: number[]) => NewEvent[],
  ): Promise<Committed<number[]> | null> {
    return this.db.$transaction(async (tx) => {
      const ids = await lockThread(tx, id);
      if (ids.length === 0) return null;
      await tx.comment.delete({ where: { id } }); // replies go by ON DELETE CASCADE
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
