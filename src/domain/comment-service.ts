import { reviseForEdit, scrubForDelete } from './event-payloads';
import { MAX_MENTIONED_USERS, mentionedUsernames } from './mentions';
import { DomainError, invalidParent, notFound } from './errors';
import { canDeleteComment, canEditComment } from './permissions';
import type { CatalogReader, CommentRepository, DataPath, NewEvent } from './repositories';
import type { Comment, CommentCursor, CommentOrder, TrackContext, User, UserRef } from './types';
import {
  commentDeletedData,
  commentEditedData,
  mentionData,
  newCommentData,
  userTypingData,
} from '../events/builders';
import { trackStream, userStream, type EventData, type StoredEvent } from '../events/types';

/** Receives a transaction's events right after it committed (the outbox relay publishes them). */
export type CommittedEventsSink = (events: StoredEvent[]) => void;

/** An event that is published but never stored (`user_typing`). */
export interface EphemeralEvent {
  stream: string;
  data: EventData;
}

/** Where a new comment's id sits in the events its creation emits (each embeds the comment). */
const NEW_COMMENT_ID_PATH: DataPath = ['comment', 'id'];

/**
 * Comment use cases: permissions, mention fan-out, and which events each
 * change emits. Persistence and the events' transaction live behind the repositories.
 */
export class CommentService {
  constructor(
    private readonly catalog: CatalogReader,
    private readonly comments: CommentRepository,
    private readonly onCommitted: CommittedEventsSink,
  ) {}

  async list(
    trackId: string,
    opts: { order: CommentOrder; limit: number; cursor: CommentCursor | null },
  ): Promise<{ comments: Comment[]; next: CommentCursor | null }> {
    if (opts.cursor && opts.cursor.order !== opts.order) {
      throw new DomainError('invalid_cursor', 'cursor was made for another order');
    }
    await this.requireTrack(trackId);
    // One extra row tells whether another page exists.
    const rows = await this.comments.list(trackId, {
      order: opts.order,
      limit: opts.limit + 1,
      after: opts.cursor,
    });
    const page = rows.slice(0, opts.limit);
    const last = page[page.length - 1];
    const next =
      rows.length > opts.limit && last
        ? { order: opts.order, timestamp: last.timestamp, id: last.id }
        : null;
    return { comments: page, next };
  }

  async create(
    author: User,
    trackId: string,
    input: { content: string; timestamp: number; parentId: number | null },
  ): Promise<Comment> {
    const track = await this.requireTrack(trackId);
    if (track.duration_s !== null && input.timestamp > track.duration_s) {
      throw new DomainError(
        'invalid_timestamp',
        `timestamp must be between 0 and the track's duration (${track.duration_s} s)`,
      );
    }
    if (input.parentId !== null) {
      const parent = await this.comments.find(input.parentId);
      if (!parent || parent.track_id !== trackId) throw invalidParent();
    }
    const mentioned = await this.mentionedUsers(input.content);
    const recipients = mentionRecipients(
      author.id,
      mentioned.map((u) => u.id),
      track.album_creator_id,
    );
    const { result, events } = await this.comments.create(
      {
        trackId,
        author,
        content: input.content,
        timestamp: input.timestamp,
        parentId: input.parentId,
        mentions: mentioned,
      },
      (comment) => [
        {
          stream: trackStream(trackId),
          type: 'new_comment',
          data: newCommentData(comment),
          commentId: comment.id,
        },
        ...recipients.map((userId) => mentionEvent(userId, comment, author)),
      ],
      NEW_COMMENT_ID_PATH,
    );
    this.onCommitted(events);
    return result;
  }

  /** Only the author edits. Users named for the first time by the edit get a `mention`. */
  async edit(editor: User, commentId: number, content: string): Promise<Comment> {
    const current = await this.comments.find(commentId);
    if (!current) throw notFound('comment');
    if (!canEditComment(editor, current)) {
      throw new DomainError('forbidden', 'only the author can edit a comment');
    }
    const mentioned = await this.mentionedUsers(content);
    const committed = await this.comments.edit(
      commentId,
      { content, mentionUserIds: mentioned.map((u) => u.id) },
      (comment, added) => [
        {
          stream: trackStream(comment.track_id),
          type: 'comment_edited',
          data: commentEditedData(comment),
          commentId: comment.id,
        },
        ...added
          .filter((userId) => userId !== editor.id)
          .map((userId) => mentionEvent(userId, comment, editor)),
      ],
      reviseForEdit,
    );
    if (!committed) throw notFound('comment');
    this.onCommitted(committed.events);
    return committed.result;
  }

  /** The author, the album's creator or a team member deletes; replies go with their parent. */
  async delete(actor: User, commentId: number): Promise<void> {
    const current = await this.comments.find(commentId);
    if (!current) throw notFound('comment');
    const track = await this.requireTrack(current.track_id);
    if (!canDeleteComment(actor, current, track)) {
      throw new DomainError(
        'forbidden',
        "only the author, the album's creator or the team can delete a comment",
      );
    }
    const committed = await this.comments.delete(
      commentId,
      (ids) =>
        ids.map((id) => ({
          stream: trackStream(track.id),
          type: 'comment_deleted' as const,
          data: commentDeletedData(track.id, id),
          commentId: id,
        })),
      scrubForDelete,
    );
    if (!committed) throw notFound('comment');
    this.onCommitted(committed.events);
  }

  /** The existing users `content` names; more than MAX_MENTIONED_USERS is refused. */
  private async mentionedUsers(content: string): Promise<User[]> {
    const users = await this.catalog.findUsersByUsername(mentionedUsernames(content));
    if (users.length > MAX_MENTIONED_USERS) {
      throw new DomainError(
        'too_many_mentions',
        `a comment may name at most ${MAX_MENTIONED_USERS} users (it names ${users.length})`,
      );
    }
    return users;
  }

  /**
   * `user` is typing (or stopped) on the track: the `user_typing` event to publish. Not
   * stored; a client drops the indicator after `expiresInMs` without a newer one.
   */
  async typing(
    user: UserRef,
    trackId: string,
    isTyping: boolean,
    expiresInMs: number,
  ): Promise<EphemeralEvent> {
    await this.requireTrack(trackId);
    return {
      stream: trackStream(trackId),
      data: userTypingData(trackId, user, isTyping, expiresInMs),
    };
  }

  async requireTrack(trackId: string): Promise<TrackContext> {
    const track = await this.catalog.findTrack(trackId);
    if (!track) throw notFound('track');
    return track;
  }
}

/** Named users and the album's creator, each once, never the author. */
export function mentionRecipients(
  authorId: number,
  mentionedIds: number[],
  albumCreatorId: number,
): number[] {
  const ids = new Set([...mentionedIds, albumCreatorId]);
  ids.delete(authorId);
  return [...ids];
}

const mentionEvent = (userId: number, comment: Comment, from: User): NewEvent => ({
  stream: userStream(userId),
  type: 'mention',
  data: mentionData(userId, comment, from),
  commentId: comment.id,
});
