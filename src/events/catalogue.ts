/**
 * The contract's wire shapes, declared once: the comment (CONTRACT.md section 3) and the `data`
 * of every SSE event (section 5). The server, the browser/Node client, the tests and the bench
 * all import these. Types only, importing nothing: the browser client is compiled without a
 * bundler, so what it imports from here must vanish from its output.
 */

export interface UserRef {
  id: number;
  username: string;
}

export interface Comment {
  id: number;
  track_id: string;
  user: UserRef;
  content: string;
  timestamp: number;
  parent_id: number | null;
  mentions: UserRef[];
  is_edited: boolean;
  last_edited_at: string | null;
  created_at: string;
}

/** Every event's `data` carries its `type` (the SSE `event:` name) and `track_id`. */
interface EventBase<T extends string> {
  type: T;
  track_id: string;
}

/** The greeting; not stored (no `id:`). */
export interface ConnectedEvent {
  type: 'connected';
  /** Absent or null on the personal stream (the server sends null). */
  track_id?: string | null;
  message: string;
  connection_id: string;
}

export interface NewCommentEvent extends EventBase<'new_comment'> {
  comment: Comment;
}

export interface CommentEditedEvent extends EventBase<'comment_edited'> {
  comment_id: number;
  content: string;
  timestamp: number;
  is_edited: true;
  last_edited_at: string;
}

export interface CommentDeletedEvent extends EventBase<'comment_deleted'> {
  comment_id: number;
}

/** Ephemeral: travels on the track's bus channel, never stored (no `id:`). */
export interface UserTypingEvent extends EventBase<'user_typing'> {
  user_id: number;
  username: string;
  is_typing: boolean;
  expires_in_ms: number;
}

/** On the recipient's personal stream. */
export interface MentionEvent extends EventBase<'mention'> {
  comment: Comment;
  from_user: UserRef;
}

/** History no longer covers the client's Last-Event-ID: refetch over REST. Not stored. */
export interface ResetEvent {
  type: 'reset';
  /** Absent or null on the personal stream (the server sends null). */
  track_id?: string | null;
  reason: string;
}

/** Each SSE event name and its `data`. */
export interface StreamEventMap {
  connected: ConnectedEvent;
  new_comment: NewCommentEvent;
  comment_edited: CommentEditedEvent;
  comment_deleted: CommentDeletedEvent;
  user_typing: UserTypingEvent;
  mention: MentionEvent;
  reset: ResetEvent;
}

export type StreamEventName = keyof StreamEventMap;

/** The `data` of any SSE event, discriminated by `type`. */
export type StreamEventData = StreamEventMap[StreamEventName];

/** Events kept in the log, with a per-stream seq (the SSE `id:`): replayable. */
export type StoredEventType = 'new_comment' | 'comment_edited' | 'comment_deleted' | 'mention';
/** Events that travel on the bus but are never stored. */
export type EphemeralEventType = 'user_typing';
/** Every event that travels on the bus (the hub writes `connected` and `reset` itself). */
export type EventType = StoredEventType | EphemeralEventType;

/** The `data` of a stored event. */
export type StoredEventData = StreamEventMap[StoredEventType];
/** The `data` of an event carried by the log or the bus. */
export type EventData = StreamEventMap[EventType];
