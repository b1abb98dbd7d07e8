import { invalidParent } from '../../src/domain/errors';
import { withValueAt } from '../../src/store/comment-store';
import {
  commentDraft,
  type CatalogReader,
  type Committed,
  type CommentRepository,
  type DataPath,
  type NewComment,
  type NewEvent,
} from '../../src/domain/repositories';
import type {
  Comment,
  CommentCursor,
  CommentOrder,
  TrackContext,
  User,
} from '../../src/domain/types';
import type { StoredEvent, StoredEventData } from '../../src/events/types';

/**
 * The domain's repositories in memory, for unit tests of the use cases without PostgreSQL.
 * They keep the stores' promises: a write and its events commit together or not at all, seqs
 * count per stream, the new comment's id lands at the caller's path in its events.
 */
export class InMemoryCatalog implements CatalogReader {
  readonly users = new Map<number, User>();
  readonly tracks = new Map<string, TrackContext>();

  addUser(user: User): User {
    this.users.set(user.id, user);
    return user;
  }

  addTrack(track: TrackContext): TrackContext {
    this.tracks.set(track.id, track);
    return track;
  }

  async findTrack(id: string): Promise<TrackContext | null> {
    return this.tracks.get(id) ?? null;
  }

  async findUsersByUsername(usernames: string[]): Promise<User[]> {
    return [...this.users.values()].filter((u) => usernames.includes(u.username));
  }
}

interface StoredRow {
  event: StoredEvent;
  commentId: number;
}

export class InMemoryComments implements CommentRepository {
  readonly comments = new Map<number, Comment>();
  /** Every stored event, in append order, with the comment it is about. */
  readonly log: StoredRow[] = [];
  private nextId = 1;
  private readonly heads = new Map<string, number>();
  /** Ticks per write, so created_at and last_edited_at differ between writes. */
  private clock = Date.UTC(2026, 0, 1);

  /** The catalogue gives the usernames of mentioned users, as the database's join does. */
  constructor(private readonly catalog: InMemoryCatalog) {}

  async list(
    trackId: string,
    opts: { order: CommentOrder; limit: number; after: CommentCursor | null },
  ): Promise<Comment[]> {
    const { order, after } = opts;
    const key = (c: Comment): [number, number] =>
      order === 'timestamp' ? [c.timestamp, c.id] : [c.id, 0];
    const before = (a: [number, number], b: [number, number]) =>
      a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
    const cursorKey: [number, number] | null = after
      ? order === 'timestamp'
        ? [after.timestamp, after.id]
        : [after.id, 0]
      : null;
    return [...this.comments.values()]
      .filter((c) => c.track_id === trackId)
      .filter((c) => cursorKey === null || before(cursorKey, key(c)))
      .sort((a, b) => (before(key(a), key(b)) ? -1 : 1))
      .slice(0, opts.limit);
  }

  async find(id: number): Promise<Comment | null> {
    return this.comments.get(id) ?? null;
  }

  async create(
    input: NewComment,
    eventsFor: (comment: Comment) => NewEvent[],
    idPath: DataPath,
  ): Promise<Committed<Comment>> {
    if (input.parentId !== null) {
      const parent = this.comments.get(input.parentId);
      if (!parent || parent.track_id !== input.trackId) throw invalidParent();
    }
    const draft = commentDraft(input, this.now());
    const events = eventsFor(draft);
    const comment = { ...draft, id: this.nextId++ };
    this.comments.set(comment.id, comment);
    const completed = events.map((e) => ({
      ...e,
      data: withValueAt(e.data, idPath, comment.id),
      commentId: comment.id,
    }));
    return { result: comment, events: this.append(completed) };
  }

  async edit(
    id: number,
    input: { content: string; mentionUserIds: number[] },
    eventsFor: (comment: Comment, addedMentionIds: number[]) => NewEvent[],
    reviseEarlier: (event: StoredEvent, comment: Comment) => StoredEventData,
  ): Promise<Committed<Comment> | null> {
    const current = this.comments.get(id);
    if (!current) return null;
    const had = new Set(current.mentions.map((m) => m.id));
    const added = input.mentionUserIds.filter((u) => !had.has(u));
    const mentions = [...input.mentionUserIds]
      .sort((a, b) => a - b)
      .map((uid) => ({ id: uid, username: this.catalog.users.get(uid)?.username ?? '' }));
    const comment: Comment = {
      ...current,
      content: input.content,
      mentions,
      is_edited: true,
      last_edited_at: this.now().toISOString(),
    };
    this.comments.set(id, comment);
    this.rewrite([id], (event) => reviseEarlier(event, comment));
    return { result: comment, events: this.append(eventsFor(comment, added)) };
  }

  async delete(
    id: number,
    eventsFor: (deletedIds: number[]) => NewEvent[],
    scrubEarlier: (event: StoredEvent) => StoredEventData,
  ): Promise<Committed<number[]> | null> {
    if (!this.comments.has(id)) return null;
    const ids: number[] = [];
    for (let level = [id]; level.length > 0;) {
      ids.push(...level);
      level = [...this.comments.values()]
        .filter((c) => c.parent_id !== null && level.includes(c.parent_id))
        .map((c) => c.id)
        .sort((a, b) => a - b);
    }
    for (const gone of ids) this.comments.delete(gone);
    this.rewrite(ids, scrubEarlier);
    return { result: ids, events: this.append(eventsFor(ids)) };
  }

  /** The stored events of one stream, oldest first. */
  eventsOf(stream: string): StoredEvent[] {
    return this.log.filter((r) => r.event.stream === stream).map((r) => r.event);
  }

  private append(events: NewEvent[]): StoredEvent[] {
    return events.map((e) => {
      const seq = (this.heads.get(e.stream) ?? 0) + 1;
      this.heads.set(e.stream, seq);
      const event: StoredEvent = { stream: e.stream, seq, type: e.type, data: e.data };
      this.log.push({ event, commentId: e.commentId });
      return event;
    });
  }

  private rewrite(ids: number[], revise: (event: StoredEvent) => StoredEventData): void {
    for (const row of this.log) {
      if (ids.includes(row.commentId)) row.event = { ...row.event, data: revise(row.event) };
    }
  }

  private now(): Date {
    this.clock += 1000;
    return new Date(this.clock);
  }
}
