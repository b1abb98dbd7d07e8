/**
 * The contract's wire shapes, declared once as zod schemas: the comment (CONTRACT.md section 3)
 * and the `data` of every SSE event (section 5). The types below are inferred from them; the
 * server, the browser/Node client, the tests and the bench import the types, and the OpenAPI
 * document (src/http/openapi.ts) is generated from the schemas, so the two cannot drift.
 * The browser client is compiled without a bundler: it must import from here with
 * `import type` only, so that zod never reaches its output.
 */
import { z } from 'zod';

/** An ISO-8601 instant as the server writes it (`Date.prototype.toISOString`). */
const isoInstant = z.string().meta({ format: 'date-time' });

export const userRefSchema = z.object({
  id: z.number().int(),
  username: z.string(),
});
export type UserRef = z.infer<typeof userRefSchema>;

export const commentSchema = z
  .object({
    id: z.number().int(),
    track_id: z.string(),
    user: userRefSchema,
    content: z.string(),
    timestamp: z.number().meta({ description: 'position in the track, in seconds' }),
    parent_id: z.number().int().nullable(),
    mentions: z.array(userRefSchema),
    is_edited: z.boolean(),
    last_edited_at: isoInstant.nullable(),
    created_at: isoInstant,
  })
  .meta({ id: 'Comment' });
export type Comment = z.infer<typeof commentSchema>;

/** Every stored or bus event's `data` carries its `type` (the SSE `event:` name) and `track_id`. */
const eventBase = <T extends string>(type: T) =>
  z.object({ type: z.literal(type), track_id: z.string() });

/** Absent or null on the personal stream (the server sends null). */
const optionalTrackId = z.string().nullable().optional();

export const connectedEventSchema = z
  .object({
    type: z.literal('connected'),
    track_id: optionalTrackId,
    message: z.string(),
    connection_id: z.string(),
  })
  .meta({ description: 'The greeting; not stored (no `id:`).' });
export type ConnectedEvent = z.infer<typeof connectedEventSchema>;

export const newCommentEventSchema = eventBase('new_comment')
  .extend({ comment: commentSchema })
  .meta({ description: 'A comment was posted. Stored and resumable.' });
export type NewCommentEvent = z.infer<typeof newCommentEventSchema>;

export const commentEditedEventSchema = eventBase('comment_edited')
  .extend({
    comment_id: z.number().int(),
    content: z.string(),
    timestamp: z.number(),
    is_edited: z.literal(true),
    last_edited_at: isoInstant,
  })
  .meta({ description: 'A comment was edited. Stored and resumable.' });
export type CommentEditedEvent = z.infer<typeof commentEditedEventSchema>;

export const commentDeletedEventSchema = eventBase('comment_deleted')
  .extend({ comment_id: z.number().int() })
  .meta({ description: 'A comment (or a reply of a deleted one) was deleted. Stored.' });
export type CommentDeletedEvent = z.infer<typeof commentDeletedEventSchema>;

export const userTypingEventSchema = eventBase('user_typing')
  .extend({
    user_id: z.number().int(),
    username: z.string(),
    is_typing: z.boolean(),
    expires_in_ms: z.number().int(),
  })
  .meta({ description: 'Ephemeral: travels on the track bus channel, never stored (no `id:`).' });
export type UserTypingEvent = z.infer<typeof userTypingEventSchema>;

export const mentionEventSchema = eventBase('mention')
  .extend({ comment: commentSchema, from_user: userRefSchema })
  .meta({ description: "On the recipient's personal stream. Stored and resumable." });
export type MentionEvent = z.infer<typeof mentionEventSchema>;

export const resetEventSchema = z
  .object({
    type: z.literal('reset'),
    track_id: optionalTrackId,
    reason: z.string(),
  })
  .meta({
    description:
      "History no longer covers the client's Last-Event-ID: refetch over REST. Not stored.",
  });
export type ResetEvent = z.infer<typeof resetEventSchema>;

/** Each SSE event name and the schema of its `data`. */
export const STREAM_EVENT_SCHEMAS = {
  connected: connectedEventSchema,
  new_comment: newCommentEventSchema,
  comment_edited: commentEditedEventSchema,
  comment_deleted: commentDeletedEventSchema,
  user_typing: userTypingEventSchema,
  mention: mentionEventSchema,
  reset: resetEventSchema,
} as const;

/** Each SSE event name and its `data`. */
export type StreamEventMap = {
  [K in keyof typeof STREAM_EVENT_SCHEMAS]: z.infer<(typeof STREAM_EVENT_SCHEMAS)[K]>;
};

export type StreamEventName = keyof StreamEventMap;

/** The `data` of any SSE event, discriminated by `type`. */
export type StreamEventData = StreamEventMap[StreamEventName];

/** Which events each stream carries (contract section 5), and whether each is stored (has an `id:`). */
export const STREAM_EVENTS = {
  track: ['connected', 'new_comment', 'comment_edited', 'comment_deleted', 'user_typing', 'reset'],
  user: ['connected', 'mention', 'reset'],
} as const satisfies Record<string, readonly StreamEventName[]>;

/** Events kept in the log, with a per-stream seq (the SSE `id:`): replayable. */
export const STORED_EVENT_TYPES = [
  'new_comment',
  'comment_edited',
  'comment_deleted',
  'mention',
] as const satisfies readonly StreamEventName[];

/** Events kept in the log, with a per-stream seq (the SSE `id:`): replayable. */
export type StoredEventType = (typeof STORED_EVENT_TYPES)[number];
/** Events that travel on the bus but are never stored. */
export type EphemeralEventType = 'user_typing';
/** Every event that travels on the bus (the hub writes `connected` and `reset` itself). */
export type EventType = StoredEventType | EphemeralEventType;

/** The `data` of a stored event. */
export type StoredEventData = StreamEventMap[StoredEventType];
/** The `data` of an event carried by the log or the bus. */
export type EventData = StreamEventMap[EventType];
