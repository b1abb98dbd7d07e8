import type { Db, Tx } from './prisma';
import { appendEvents, type NewEvent } from './event-log';
import type { StoredEvent } from '../events/types';
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
      const ids = await threadIds(tx, id);
      if (ids.length === 0) return null;
      await tx.comment.delete({ where: { id } }); // replies go by ON DELETE CASCADE
      return { result: ids, events: await appendEvents(tx, eventsFor(ids)) };
    });
  }
}

/** The comment and all its descendants, parents first; locks them against concurrent edits. */
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
