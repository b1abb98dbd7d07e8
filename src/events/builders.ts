/**
 * The `data` of every SSE event (contract section 5), built here and nowhere else: by the
 * domain when a change emits it or rewrites the history, by the stream hub (`connected`,
 * `reset`) and for `user_typing`. Key order is the wire's: each object is serialised as built.
 */
import type {
  Comment,
  CommentDeletedEvent,
  CommentEditedEvent,
  ConnectedEvent,
  MentionEvent,
  NewCommentEvent,
  ResetEvent,
  UserRef,
  UserTypingEvent,
} from './catalogue';

/** The greeting; `trackId` null for the personal stream. */
export const connectedData = (trackId: string | null, connectionId: string): ConnectedEvent => ({
  type: 'connected',
  track_id: trackId,
  message: trackId !== null ? `Connected to track ${trackId}` : 'Connected to your personal stream',
  connection_id: connectionId,
});

export const newCommentData = (comment: Comment): NewCommentEvent => ({
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
export const mentionData = (
  recipientId: number,
  comment: Comment,
  from: UserRef,
): MentionEvent => ({
  type: 'mention',
  track_id: comment.track_id,
  comment: { ...comment, mentions: comment.mentions.filter((m) => m.id === recipientId) },
  from_user: { id: from.id, username: from.username },
});

export const commentEditedData = (comment: Comment): CommentEditedEvent => ({
  type: 'comment_edited',
  track_id: comment.track_id,
  comment_id: comment.id,
  content: comment.content,
  timestamp: comment.timestamp,
  is_edited: true,
  // An edited comment always has it (the edit sets it); `Comment` cannot say so.
  last_edited_at: comment.last_edited_at as string,
});

export const commentDeletedData = (trackId: string, commentId: number): CommentDeletedEvent => ({
  type: 'comment_deleted',
  track_id: trackId,
  comment_id: commentId,
});

export const userTypingData = (
  trackId: string,
  user: UserRef,
  isTyping: boolean,
  expiresInMs: number,
): UserTypingEvent => ({
  type: 'user_typing',
  track_id: trackId,
  user_id: user.id,
  username: user.username,
  is_typing: isTyping,
  expires_in_ms: expiresInMs,
});

/** `trackId` null for the personal stream. */
export const resetData = (trackId: string | null, reason: string): ResetEvent => ({
  type: 'reset',
  track_id: trackId,
  reason,
});
