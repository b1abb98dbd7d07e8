/**
 * The `data` of each stored event (contract section 5), built in one place: when a change
 * emits it, and again when a later edit or delete rewrites the history ("deleted means gone":
 * replays carry a comment's current content only, and nothing of a deleted one).
 */
import type { Comment, UserRef } from './types';
import { userOfStream, type EventData, type StoredEvent } from '../events/types';

export const newCommentData = (comment: Comment): EventData => ({
  type: 'new_comment',
  track_id: comment.track_id,
  comment,
});

/**
 * A `mention` to `recipientId`. Its comment lists in `mentions` only the recipient (when
 * named, which is how a client tells "named" from "the album's creator hears of it"): the
 * others named are none of the recipient's business, and an event's size must not grow with
 * the number of people named (each of them gets one).
 */
export const mentionData = (recipientId: number, comment: Comment, from: UserRef): EventData => ({
  type: 'mention',
  track_id: comment.track_id,
  comment: { ...comment, mentions: comment.mentions.filter((m) => m.id === recipientId) },
  from_user: { id: from.id, username: from.username },
});

export const commentEditedData = (comment: Comment): EventData => ({
  type: 'comment_edited',
  track_id: comment.track_id,
  comment_id: comment.id,
  content: comment.content,
  timestamp: comment.timestamp,
  is_edited: true,
  last_edited_at: comment.last_edited_at,
});

export const commentDeletedData = (trackId: string, commentId: number): EventData => ({
  type: 'comment_deleted',
  track_id: trackId,
  comment_id: commentId,
});

/**
 * An earlier event of `current` once it was edited: what it would say if emitted now (the
 * current content and mentions), keeping what only that event knows (who sent a mention,
 * when an edit happened). Returns the event's own data when there is nothing to change.
 */
export function reviseForEdit(event: StoredEvent, current: Comment): EventData {
  switch (event.type) {
    case 'new_comment':
      return newCommentData(current);
    case 'mention': {
      const recipient = userOfStream(event.stream);
      const from = event.data.from_user as UserRef;
      return recipient === null ? event.data : mentionData(recipient, current, from);
    }
    case 'comment_edited':
      return { ...event.data, content: current.content };
    default:
      return event.data;
  }
}

/**
 * An earlier event of a deleted comment: its content (and the mentions it made) removed.
 * `content` stays, empty, so every field keeps its type for clients; ids and order stay.
 */
export function scrubForDelete(event: StoredEvent): EventData {
  switch (event.type) {
    case 'new_comment':
    case 'mention': {
      const comment = event.data.comment as Comment;
      return { ...event.data, comment: { ...comment, content: '', mentions: [] } };
    }
    case 'comment_edited':
      return { ...event.data, content: '' };
    default:
      return event.data;
  }
}
