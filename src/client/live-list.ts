/**
 * A track's comments kept current from the REST snapshot and the live stream, with the rules
 * every client of the contract needs (CONTRACT.md sections 4 and 5):
 *   - the snapshot is taken after `connected`, and live events that arrive while it loads wait
 *     and are applied after it, so nothing committed between the two is missed;
 *   - a `reset`, or a reconnect that cannot resume (no event id seen yet), retakes the snapshot,
 *     and a newer load supersedes an older one;
 *   - each comment is held once however often it is delivered (stream, replay, POST answer),
 *     and one deleted while the list is open never comes back from a late or replayed copy.
 *
 * It imports types only, so it compiles to a standalone ES module for the browser.
 */

import type {
  Comment,
  CommentDeletedEvent,
  CommentEditedEvent,
  NewCommentEvent,
  UserTypingEvent,
} from '../events/catalogue';
import type {
  ConnectionState,
  StreamError,
  SubscribeOptions,
  Subscription,
  TrackCommentsClient,
} from './trackcomments-client';

/** The live events that change the list. */
export type LiveCommentEvent = NewCommentEvent | CommentEditedEvent | CommentDeletedEvent;

/**
 * The stream's connection state, plus what the list does about it: `caught-up` once a
 * reconnect's replay is in (when it brought any event), `reloading` while a `reset` retakes
 * the snapshot and `reset` once it has.
 */
export type LiveListStatus = ConnectionState | 'caught-up' | 'reloading' | 'reset';

export interface LiveListHandlers {
  /** The comments changed (a snapshot or a live event): render `list.comments` again. */
  change?(): void;
  /** A live comment event, once applied (after the snapshot when it came in during a load). */
  applied?(event: LiveCommentEvent): void;
  status?(status: LiveListStatus): void;
  /** Typing events are ephemeral: passed straight through, never queued. */
  user_typing?(event: UserTypingEvent): void;
  /** A snapshot failed to load; live events go on being applied. */
  loadFailed?(error: unknown): void;
  /** From the subscription; `fatal` means it gave up for good. */
  streamError?(error: StreamError): void;
}

export interface LiveList {
  readonly trackId: string;
  /** id -> comment. A snapshot replaces the map: read it afresh on each `change`. */
  readonly comments: ReadonlyMap<number, Comment>;
  /** True while a snapshot loads (live events wait meanwhile). */
  readonly loading: boolean;
  /**
   * A comment this client wrote (the POST answer). Ignored while a snapshot loads (the
   * snapshot or a queued event brings it), when known already, deleted, or of another track.
   * Like `replace` and `remove`, it does not call `change`: the caller renders its own writes.
   * Returns whether the list changed.
   */
  add(comment: Comment): boolean;
  /** An edited comment (the PATCH answer), if the list holds it. */
  replace(comment: Comment): boolean;
  /** A deleted comment (the DELETE answer, or a 404 for it); it stays out from now on. */
  remove(commentId: number): boolean;
  /** Closes the stream; no handler is called afterwards and a pending snapshot is dropped. */
  close(): void;
}

export type LiveListClient = Pick<TrackCommentsClient, 'listAllComments' | 'subscribeTrack'>;

export function openLiveList(
  client: LiveListClient,
  trackId: string,
  handlers: LiveListHandlers,
  options: SubscribeOptions = {},
): LiveList {
  return new TrackLiveList(client, trackId, handlers, options);
}

class TrackLiveList implements LiveList {
  private map = new Map<number, Comment>();
  private readonly deleted = new Set<number>();
  /** Live events that arrived during a load. Nothing can arrive before the first one starts. */
  private queued: LiveCommentEvent[] = [];
  private isLoading = true;
  /** Bumped by each load (and by close): only the newest load's result is kept. */
  private loadSeq = 0;
  private closed = false;
  private loadedOnce = false;
  /** A reset's reload stands for this connection's replay: no `caught-up` after it. */
  private resetThisConnection = false;
  private readonly subscription: Subscription;

  constructor(
    private readonly client: LiveListClient,
    readonly trackId: string,
    private readonly handlers: LiveListHandlers,
    options: SubscribeOptions,
  ) {
    this.subscription = client.subscribeTrack(
      trackId,
      {
        state: (state) => this.onState(state),
        connected: () => this.onConnected(),
        caught_up: ({ replayed }) => {
          if (!this.closed && !this.resetThisConnection && replayed > 0)
            this.handlers.status?.('caught-up');
        },
        reset: () => void this.onReset(),
        new_comment: (event) => this.receive(event),
        comment_edited: (event) => this.receive(event),
        comment_deleted: (event) => this.receive(event),
        user_typing: (event) => {
          if (!this.closed) this.handlers.user_typing?.(event);
        },
        error: (error) => {
          if (!this.closed) this.handlers.streamError?.(error);
        },
      },
      options,
    );
  }

  get comments(): ReadonlyMap<number, Comment> {
    return this.map;
  }

  get loading(): boolean {
    return this.isLoading;
  }

  add(comment: Comment): boolean {
    return !this.closed && !this.isLoading && this.insert(comment);
  }

  replace(comment: Comment): boolean {
    if (!this.map.has(comment.id)) return false;
    this.map.set(comment.id, comment);
    return true;
  }

  remove(commentId: number): boolean {
    this.deleted.add(commentId);
    return this.map.delete(commentId);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.loadSeq++;
    this.queued = [];
    this.subscription.close();
  }

  private onState(state: ConnectionState): void {
    if (this.closed) return;
    if (state === 'reconnecting') this.resetThisConnection = false;
    this.handlers.status?.(state);
  }

  private onConnected(): void {
    if (this.closed) return;
    // A reconnect with no event id yet cannot be resumed (the server would send only live
    // events from now on), so the snapshot is retaken as on the first connect.
    if (!this.loadedOnce || this.subscription.lastEventId === null) void this.reload();
    this.loadedOnce = true;
  }

  private async onReset(): Promise<void> {
    if (this.closed) return;
    this.resetThisConnection = true;
    this.handlers.status?.('reloading');
    const loaded = await this.reload();
    if (loaded && !this.closed) this.handlers.status?.('reset');
  }

  /** Replaces the comments with a snapshot, then applies what arrived meanwhile. */
  private async reload(): Promise<boolean> {
    const seq = ++this.loadSeq;
    const current = () => !this.closed && seq === this.loadSeq;
    this.isLoading = true;
    this.queued = [];
    try {
      const comments = await this.client.listAllComments(this.trackId, { order: 'timestamp' });
      if (!current()) return false;
      this.map = new Map();
      for (const c of comments) if (!this.deleted.has(c.id)) this.map.set(c.id, c);
      return true;
    } catch (err) {
      if (current()) this.handlers.loadFailed?.(err);
      return false;
    } finally {
      // A superseded load leaves the loading state and the queue to the newer one.
      if (current()) {
        this.isLoading = false;
        const queued = this.queued;
        this.queued = [];
        for (const event of queued) this.apply(event);
        this.handlers.change?.();
      }
    }
  }

  private receive(event: LiveCommentEvent): void {
    if (this.closed) return;
    if (this.isLoading) {
      this.queued.push(event);
      return;
    }
    this.apply(event);
    this.handlers.change?.();
  }

  private apply(event: LiveCommentEvent): void {
    if (event.type === 'new_comment') {
      this.insert(event.comment);
    } else if (event.type === 'comment_edited') {
      const existing = this.map.get(event.comment_id);
      if (existing) {
        this.map.set(event.comment_id, {
          ...existing,
          content: event.content,
          timestamp: event.timestamp,
          is_edited: true,
          last_edited_at: event.last_edited_at,
        });
      }
    } else {
      this.remove(event.comment_id);
    }
    this.handlers.applied?.(event);
  }

  private insert(comment: Comment): boolean {
    if (comment.track_id !== this.trackId) return false;
    if (this.deleted.has(comment.id) || this.map.has(comment.id)) return false;
    this.map.set(comment.id, comment);
    return true;
  }
}
