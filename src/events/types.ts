/**
 * The event model shared by the store (event log), the bus and the stream hub.
 *
 * A *stream* is an ordered, resumable sequence of events with its own ids:
 *   - `track:<trackId>` – a track's stream (new_comment, comment_edited, comment_deleted)
 *   - `user:<userId>`   – a user's personal stream (mention)
 * Ephemeral events (user_typing) travel on a track stream's bus channel but
 * have no seq: they are never stored and carry no SSE `id:`.
 * What each event's `data` holds is in ./catalogue.ts.
 */
import type { EventType, StoredEventData, StoredEventType } from './catalogue';

export type {
  EphemeralEventType,
  EventData,
  EventType,
  StoredEventData,
  StoredEventType,
} from './catalogue';

/** One entry per event type the bus carries: the compiler checks none is missing. */
const BUS_EVENT_TYPES: Readonly<Record<EventType, true>> = {
  new_comment: true,
  comment_edited: true,
  comment_deleted: true,
  mention: true,
  user_typing: true,
};

const BUS_EVENT_TYPE_NAMES: ReadonlySet<string> = new Set(Object.keys(BUS_EVENT_TYPES));

/** Whether `name` is the type of an event the bus carries. */
export const isEventType = (name: string): name is EventType => BUS_EVENT_TYPE_NAMES.has(name);

/** An event as stored in the log (and as published on the bus after commit). */
export interface StoredEvent {
  stream: string;
  /** Strictly increasing within `stream`, in commit order; the SSE `id:`. */
  seq: number;
  type: StoredEventType;
  /** Its `type` is the event's `type`. */
  data: StoredEventData;
}

/** What travels on the bus: a stored event, or an ephemeral one (seq null). */
export interface BusMessage {
  stream: string;
  seq: number | null;
  type: EventType;
  /** JSON text of the event's `data` object, serialised once by the publisher. */
  data: string;
}

export const trackStream = (trackId: string): string => `track:${trackId}`;
export const userStream = (userId: number): string => `user:${userId}`;
/** The user whose personal stream `stream` is; null for any other stream. */
export const userOfStream = (stream: string): number | null => {
  const id = /^user:(\d+)$/.exec(stream)?.[1];
  return id === undefined ? null : Number(id);
};

/** Head of a stream in the log: the last seq handed out and the oldest still retained. */
export interface StreamHeadInfo {
  lastSeq: number;
  /** Lowest seq still stored; a resume from an id below `retainedFrom - 1` needs a `reset`. */
  retainedFrom: number;
}

/** Read side of the event log, used for replay, gap filling and the relay. */
export interface EventLogReader {
  /** Events of `stream` with seq > afterSeq, ascending, at most `limit`. */
  readAfter(stream: string, afterSeq: number, limit: number): Promise<StoredEvent[]>;
  /** Heads of the given streams; streams with no events are absent from the map. */
  heads(streams: string[]): Promise<Map<string, StreamHeadInfo>>;
}

/** The relay's view of the outbox. */
export interface Outbox {
  /** Committed events not yet marked published and older than `olderThanMs`, oldest first. */
  unpublished(olderThanMs: number, limit: number): Promise<StoredEvent[]>;
  /** Events an edit or a delete is rewriting right now are skipped: the relay sends them again. */
  markPublished(events: Pick<StoredEvent, 'stream' | 'seq'>[]): Promise<void>;
  /** Deletes events created before `before`; advances each stream's retainedFrom. */
  pruneBefore(before: Date): Promise<number>;
}
