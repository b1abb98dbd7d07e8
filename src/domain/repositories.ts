/**
 * What the domain needs from persistence. The stores in src/store implement these; the
 * domain's services depend on them only, so they run as well against an in-memory fake.
 */
import type {
  Album,
  Comment,
  CommentCursor,
  CommentOrder,
  Track,
  TrackContext,
  User,
  UserRef,
} from './types';
import type { StoredEventData, StoredEvent, StoredEventType } from '../events/types';

/** An event about to be appended inside a change's transaction. */
export interface NewEvent {
  stream: string;
  type: StoredEventType;
  data: StoredEventData;
  /** The comment the event is about: how a later edit or delete finds it to rewrite. */
  commentId: number;
}

/** A change and the events it emits, committed together. */
export interface Committed<T> {
  result: T;
  events: StoredEvent[];
}

export interface NewComment {
  trackId: string;
  author: UserRef;
  content: string;
  timestamp: number;
  parentId: number | null;
  mentions: UserRef[];
}

/** The comment `input` makes, before storage gives it an id (0): mentions ordered by id. */
export const commentDraft = (input: NewComment, createdAt: Date): Comment => ({
  id: 0,
  track_id: input.trackId,
  user: { id: input.author.id, username: input.author.username },
  content: input.content,
  timestamp: input.timestamp,
  parent_id: input.parentId,
  mentions: [...input.mentions]
    .sort((a, b) => a.id - b.id)
    .map((u) => ({ id: u.id, username: u.username })),
  is_edited: false,
  last_edited_at: null,
  created_at: createdAt.toISOString(),
});

/** Keys leading to one value inside an event's data, e.g. `['comment', 'id']`. */
export type DataPath = readonly string[];

/**
 * Comments and their events. Every write commits the change together with the events it emits
 * (built by the caller from the written comment), so a failed write leaves no row and no event.
 */
export interface CommentRepository {
  /** A page of a track's comments in `order`, after the cursor's position. */
  list(
    trackId: string,
    opts: { order: CommentOrder; limit: number; after: CommentCursor | null },
  ): Promise<Comment[]>;
  find(id: number): Promise<Comment | null>;
  /**
   * Stores a comment, its mentions and its events. `eventsFor` sees the comment before it has
   * an id (0); the id is written into the returned comment and, at `idPath`, into the data of
   * each event that has that path. Throws `invalid_parent` when the parent is not (or no
   * longer) a comment on the track.
   */
  create(
    input: NewComment,
    eventsFor: (comment: Comment) => NewEvent[],
    idPath: DataPath,
  ): Promise<Committed<Comment>>;
  /**
   * Replaces content and the mention set; `eventsFor` learns which mentioned users are new.
   * `reviseEarlier` rewrites the comment's stored events to its current content in the same
   * commit. Null when the comment does not exist.
   */
  edit(
    id: number,
    input: { content: string; mentionUserIds: number[] },
    eventsFor: (comment: Comment, addedMentionIds: number[]) => NewEvent[],
    reviseEarlier: (event: StoredEvent, comment: Comment) => StoredEventData,
  ): Promise<Committed<Comment> | null>;
  /**
   * Deletes a comment and its replies at any depth (ids parents first); `scrubEarlier`
   * rewrites their stored events in the same commit. Null when the comment does not exist.
   */
  delete(
    id: number,
    eventsFor: (deletedIds: number[]) => NewEvent[],
    scrubEarlier: (event: StoredEvent) => StoredEventData,
  ): Promise<Committed<number[]> | null>;
}

/** The catalogue as the comment use cases read it. */
export interface CatalogReader {
  findTrack(id: string): Promise<TrackContext | null>;
  /** The existing users among `usernames` (exact, case-sensitive match). */
  findUsersByUsername(usernames: string[]): Promise<User[]>;
}

/** The catalogue as the main application pushes it (admin upserts); `created` tells 201 from 200. */
export interface CatalogWriter {
  upsertUser(
    id: number,
    input: { username: string; isCreator: boolean; isTeam: boolean },
  ): Promise<{ user: User; created: boolean }>;
  upsertAlbum(
    id: number,
    input: { title: string; createdById: number },
  ): Promise<{ album: Album; created: boolean }>;
  upsertTrack(
    id: string,
    input: { title: string; albumId: number; durationS: number | null },
  ): Promise<{ track: Track; created: boolean }>;
}
