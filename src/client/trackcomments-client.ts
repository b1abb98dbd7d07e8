/**
 * Typed client for the track comments service (CONTRACT.md sections 4 and 5).
 *
 * Runs unchanged in browsers (globals `fetch` and `EventSource`, cookie auth) and in
 * Node 20 (pass `EventSource` from the `eventsource` package, and `headers` with an
 * `Authorization: Bearer …`). It is compiled without a bundler to an ES module in
 * `public/build/`, so it must not import anything.
 */

// ---------------------------------------------------------------------------
// Data (contract section 3)

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

export interface CommentPage {
  comments: Comment[];
  next_cursor: string | null;
}

export type CommentOrder = 'timestamp' | 'created';

export interface ListCommentsOptions {
  limit?: number;
  cursor?: string | null;
  order?: CommentOrder;
}

export interface NewCommentInput {
  content: string;
  /** Position in the track, in seconds (server default 0). */
  timestamp?: number;
  parent_id?: number | null;
}

// Demo endpoints (only mounted when the demo page is on; not part of the public contract).
export interface DemoUser {
  id: number;
  username: string;
  is_creator: boolean;
  is_team: boolean;
}

export interface DemoTrack {
  id: string;
  title: string;
  album_id: number;
  duration_s: number | null;
  album_title: string;
  album_creator_id: number;
}

// ---------------------------------------------------------------------------
// Events (contract section 5)

interface EventBase<T extends string> {
  type: T;
  track_id: string;
}

export interface ConnectedEvent {
  type: 'connected';
  /** Absent or null on the personal stream. */
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

export interface UserTypingEvent extends EventBase<'user_typing'> {
  user_id: number;
  username: string;
  is_typing: boolean;
  expires_in_ms: number;
}

export interface MentionEvent extends EventBase<'mention'> {
  comment: Comment;
  from_user: UserRef;
}

export interface ResetEvent {
  type: 'reset';
  track_id?: string | null;
  reason: string;
}

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

const STREAM_EVENT_NAMES: readonly StreamEventName[] = [
  'connected',
  'new_comment',
  'comment_edited',
  'comment_deleted',
  'user_typing',
  'mention',
  'reset',
];

/** The SSE `id:` of the event, or null for unstored events (connected, user_typing, reset). */
export interface EventMeta {
  id: string | null;
}

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'closed';

export interface StreamError {
  /** HTTP status when known (Node's `eventsource` reports it; browsers do not). */
  status?: number;
  message: string;
  /** True when the subscription gave up and is now closed. */
  fatal: boolean;
}

export type StreamHandlers = {
  [K in StreamEventName]?: (data: StreamEventMap[K], meta: EventMeta) => void;
} & {
  state?: (state: ConnectionState) => void;
  /**
   * After a reconnect: called once the replay burst has ended (no event for
   * `replayQuietMs`), with how many stored events arrived since `connected`.
   */
  caught_up?: (info: { replayed: number }) => void;
  error?: (error: StreamError) => void;
};

export interface SubscribeOptions {
  /** Resume after this event id (sent as `?last_event_id=` on the first connect). */
  lastEventId?: string | null;
  /** Back-off for re-creating a stream the EventSource gave up on. */
  minRetryMs?: number;
  maxRetryMs?: number;
  /** Quiet time that marks the end of a replay burst after a reconnect. */
  replayQuietMs?: number;
}

export interface Subscription {
  close(): void;
  readonly lastEventId: string | null;
  readonly state: ConnectionState;
}

// ---------------------------------------------------------------------------
// Environment seams: the minimum of fetch and EventSource this module needs, so that
// both the DOM types and the `eventsource` package fit.

export interface EventSourceLike {
  readonly readyState: number;
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
}

export interface EventSourceInitLike {
  withCredentials?: boolean;
  /** Honoured by the `eventsource` package (Node); ignored by browsers. */
  fetch?: FetchLike;
}

export type EventSourceConstructor = new (
  url: string,
  init?: EventSourceInitLike,
) => EventSourceLike;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- fetch implementations differ in their exact types
export type FetchLike = (url: any, init?: any) => Promise<Response>;

export interface ClientOptions {
  /** Origin (and path prefix) of the service; '' (default) means same origin. Required in Node. */
  baseUrl?: string;
  EventSource?: EventSourceConstructor;
  fetch?: FetchLike;
  /** Send cookies to a cross-origin service (it must list this origin in CORS_ORIGINS). */
  withCredentials?: boolean;
  /** Extra request headers, e.g. `Authorization` in Node (browsers cannot set them on EventSource). */
  headers?: Record<string, string>;
}

/** A REST failure, from the contract's error body `{"error":{"code","message"}}`. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** From `Retry-After` on 429, in seconds. */
  readonly retryAfterSeconds: number | null;

  constructor(
    status: number,
    code: string,
    message: string,
    retryAfterSeconds: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export interface TrackCommentsClient {
  listComments(trackId: string, options?: ListCommentsOptions): Promise<CommentPage>;
  /** Follows `next_cursor` until the end (or `maxPages`). */
  listAllComments(
    trackId: string,
    options?: { order?: CommentOrder; pageSize?: number; maxPages?: number },
  ): Promise<Comment[]>;
  postComment(trackId: string, input: NewCommentInput): Promise<Comment>;
  editComment(commentId: number, content: string): Promise<Comment>;
  deleteComment(commentId: number): Promise<void>;
  setTyping(trackId: string, isTyping: boolean): Promise<void>;
  subscribeTrack(
    trackId: string,
    handlers: StreamHandlers,
    options?: SubscribeOptions,
  ): Subscription;
  subscribeMe(handlers: StreamHandlers, options?: SubscribeOptions): Subscription;
  demo: {
    users(): Promise<DemoUser[]>;
    tracks(): Promise<DemoTrack[]>;
    me(): Promise<DemoUser>;
    signIn(userId: number): Promise<DemoUser>;
    signOut(): Promise<void>;
  };
}

// ---------------------------------------------------------------------------

const FATAL_STATUSES = new Set([400, 401, 403, 404]);

export function createClient(options: ClientOptions = {}): TrackCommentsClient {
  const baseUrl = (options.baseUrl ?? '').replace(/\/+$/, '');
  const extraHeaders = options.headers ?? {};
  const withCredentials = options.withCredentials ?? false;
  // Called as a plain function, never as a method: browsers throw "Illegal invocation"
  // when window.fetch runs with another `this`.
  const fetchImpl: FetchLike | undefined =
    options.fetch ?? (typeof fetch === 'function' ? fetch.bind(globalThis) : undefined);
  const EventSourceImpl: EventSourceConstructor | undefined =
    options.EventSource ??
    (typeof EventSource === 'function' ? (EventSource as EventSourceConstructor) : undefined);

  const url = (path: string) => `${baseUrl}${path}`;
  const enc = encodeURIComponent;

  async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
    if (!fetchImpl) throw new Error('trackcomments client: no fetch implementation');
    const headers: Record<string, string> = { Accept: 'application/json', ...extraHeaders };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    try {
      res = await fetchImpl(url(path), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: withCredentials ? 'include' : 'same-origin',
      });
    } catch (err) {
      throw new ApiError(0, 'network_error', err instanceof Error ? err.message : String(err));
    }
    const text = await res.text();
    if (!res.ok) throw toApiError(res, text);
    if (res.status === 204 || text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(res.status, 'invalid_response', 'response body is not JSON');
    }
  }

  function subscribe(
    path: string,
    handlers: StreamHandlers,
    subscribeOptions: SubscribeOptions = {},
  ): Subscription {
    if (!EventSourceImpl) throw new Error('trackcomments client: no EventSource implementation');
    return new StreamSubscription(
      EventSourceImpl,
      url(path),
      {
        withCredentials,
        // Only the Node `eventsource` package uses this: it is how headers reach the stream.
        fetch:
          fetchImpl && Object.keys(extraHeaders).length > 0
            ? withHeaders(fetchImpl, extraHeaders)
            : undefined,
      },
      handlers,
      subscribeOptions,
    );
  }

  const client: TrackCommentsClient = {
    listComments(trackId, opts = {}) {
      const q = new URLSearchParams();
      if (opts.limit !== undefined) q.set('limit', String(opts.limit));
      if (opts.cursor) q.set('cursor', opts.cursor);
      if (opts.order) q.set('order', opts.order);
      const qs = q.toString();
      return request<CommentPage>(
        'GET',
        `/api/tracks/${enc(trackId)}/comments${qs ? `?${qs}` : ''}`,
      );
    },

    async listAllComments(trackId, opts = {}) {
      const all: Comment[] = [];
      let cursor: string | null = null;
      const maxPages = opts.maxPages ?? 50;
      for (let page = 0; page < maxPages; page++) {
        const res: CommentPage = await client.listComments(trackId, {
          limit: opts.pageSize ?? 200,
          cursor,
          order: opts.order ?? 'timestamp',
        });
        all.push(...res.comments);
        cursor = res.next_cursor;
        if (!cursor) break;
      }
      return all;
    },

    async postComment(trackId, input) {
      const body: Record<string, unknown> = { content: input.content };
      if (input.timestamp !== undefined) body.timestamp = input.timestamp;
      if (input.parent_id !== undefined && input.parent_id !== null)
        body.parent_id = input.parent_id;
      const res = await request<{ comment: Comment }>(
        'POST',
        `/api/tracks/${enc(trackId)}/comments`,
        body,
      );
      return res.comment;
    },

    async editComment(commentId, content) {
      const res = await request<{ comment: Comment }>('PATCH', `/api/comments/${commentId}`, {
        content,
      });
      return res.comment;
    },

    async deleteComment(commentId) {
      await request<void>('DELETE', `/api/comments/${commentId}`);
    },

    async setTyping(trackId, isTyping) {
      await request<void>('POST', `/api/tracks/${enc(trackId)}/typing`, { is_typing: isTyping });
    },

    subscribeTrack(trackId, handlers, opts) {
      return subscribe(`/api/tracks/${enc(trackId)}/events`, handlers, opts);
    },

    subscribeMe(handlers, opts) {
      return subscribe('/api/me/events', handlers, opts);
    },

    demo: {
      async users() {
        return (await request<{ users: DemoUser[] }>('GET', '/api/demo/users')).users;
      },
      async tracks() {
        return (await request<{ tracks: DemoTrack[] }>('GET', '/api/demo/tracks')).tracks;
      },
      async me() {
        return (await request<{ user: DemoUser }>('GET', '/api/demo/me')).user;
      },
      async signIn(userId) {
        return (await request<{ user: DemoUser }>('POST', '/api/demo/session', { user_id: userId }))
          .user;
      },
      async signOut() {
        await request<void>('DELETE', '/api/demo/session');
      },
    },
  };
  return client;
}

function toApiError(res: Response, text: string): ApiError {
  const retryAfter = Number(res.headers.get('retry-after'));
  const retryAfterSeconds = Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : null;
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (body && typeof body.error?.code === 'string') {
      const message = typeof body.error.message === 'string' ? body.error.message : body.error.code;
      return new ApiError(res.status, body.error.code, message, retryAfterSeconds);
    }
  } catch {
    // Not the contract's error body (e.g. a proxy's HTML page): fall through.
  }
  return new ApiError(
    res.status,
    `http_${res.status}`,
    res.statusText || `HTTP ${res.status}`,
    retryAfterSeconds,
  );
}

function withHeaders(fetchImpl: FetchLike, extra: Record<string, string>): FetchLike {
  return (input, init?: { headers?: Record<string, string> }) =>
    fetchImpl(input, { ...init, headers: { ...(init?.headers ?? {}), ...extra } });
}

/**
 * One logical subscription over a sequence of EventSource instances.
 *
 * The EventSource reconnects by itself after a dropped connection (sending
 * `Last-Event-ID`); when it gives up instead (non-200 answer, e.g. a 502 from the proxy
 * during a deploy), this creates a new one after a back-off and resumes with
 * `?last_event_id=`. Stored events whose id is not above the last one seen are dropped,
 * so a replay overlap never reaches the handlers twice.
 */
class StreamSubscription implements Subscription {
  private source: EventSourceLike | null = null;
  private currentState: ConnectionState = 'connecting';
  private lastId: string | null;
  private closed = false;
  private everConnected = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private retryDelay: number;
  private readonly minRetryMs: number;
  private readonly maxRetryMs: number;
  private readonly replayQuietMs: number;
  private replayTimer: ReturnType<typeof setTimeout> | null = null;
  /** Non-null while counting the replay burst after a reconnect. */
  private replayed: number | null = null;

  constructor(
    private readonly EventSourceImpl: EventSourceConstructor,
    private readonly url: string,
    private readonly init: EventSourceInitLike,
    private readonly handlers: StreamHandlers,
    options: SubscribeOptions,
  ) {
    this.lastId = options.lastEventId ?? null;
    this.minRetryMs = options.minRetryMs ?? 1000;
    this.maxRetryMs = options.maxRetryMs ?? 30000;
    this.replayQuietMs = options.replayQuietMs ?? 300;
    this.retryDelay = this.minRetryMs;
    this.setState('connecting');
    this.open();
  }

  get lastEventId(): string | null {
    return this.lastId;
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimers();
    this.source?.close();
    this.source = null;
    this.setState('closed');
  }

  private open(): void {
    let target = this.url;
    if (this.lastId !== null) {
      target += `${target.includes('?') ? '&' : '?'}last_event_id=${encodeURIComponent(this.lastId)}`;
    }
    const init: EventSourceInitLike = { withCredentials: this.init.withCredentials };
    if (this.init.fetch) init.fetch = this.init.fetch;
    const source = new this.EventSourceImpl(target, init);
    this.source = source;

    source.addEventListener('open', () => {
      if (this.source !== source) return;
      this.retryDelay = this.minRetryMs;
      this.setState('live');
    });
    source.addEventListener('error', (event: Event) => this.onError(source, event));
    for (const name of STREAM_EVENT_NAMES) {
      source.addEventListener(name, (event: MessageEvent) => this.onEvent(source, name, event));
    }
  }

  private onEvent(source: EventSourceLike, name: StreamEventName, event: MessageEvent): void {
    if (this.source !== source || this.closed) return;
    // Per the SSE spec, lastEventId carries over to events without `id:`; only events
    // that carry their own id are stored ones.
    const id = storedEventId(name, event.lastEventId);
    if (id !== null && this.lastId !== null && !isAfter(id, this.lastId)) return;

    let data: unknown;
    try {
      data = JSON.parse(String(event.data));
    } catch {
      this.handlers.error?.({ message: `unparseable ${name} event`, fatal: false });
      return;
    }
    if (id !== null) this.lastId = id;

    if (name === 'connected') {
      // A reconnect, or a first connect that resumes: what follows first is the replay.
      if (this.everConnected || this.lastId !== null) this.startReplayCount();
      this.everConnected = true;
    } else if (name === 'reset') {
      // History was cut; ids after a reset are not comparable with what we saw before.
      this.lastId = null;
    } else if (id !== null && this.replayed !== null) {
      this.replayed++;
      this.armReplayTimer();
    }
    if (this.currentState !== 'live') this.setState('live');
    const handler = this.handlers[name] as ((d: unknown, m: EventMeta) => void) | undefined;
    handler?.(data, { id });
  }

  private onError(source: EventSourceLike, event: Event): void {
    if (this.source !== source || this.closed) return;
    this.stopReplayCount();
    const status = (event as { code?: unknown }).code;
    const knownStatus = typeof status === 'number' ? status : undefined;
    const message = (event as { message?: unknown }).message;
    const text = typeof message === 'string' && message ? message : 'stream error';
    // readyState CONNECTING (0): the EventSource is already reconnecting by itself.
    if (source.readyState === 0) {
      this.setState('reconnecting');
      return;
    }
    source.close();
    this.source = null;
    if (knownStatus !== undefined && FATAL_STATUSES.has(knownStatus)) {
      this.handlers.error?.({ status: knownStatus, message: text, fatal: true });
      this.close();
      return;
    }
    this.handlers.error?.({ status: knownStatus, message: text, fatal: false });
    this.setState('reconnecting');
    // Jitter spreads the reconnects of many pages after one replica restarts.
    const delay = this.retryDelay * (0.5 + Math.random() * 0.5);
    this.retryDelay = Math.min(this.retryDelay * 2, this.maxRetryMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.closed) this.open();
    }, delay);
  }

  private startReplayCount(): void {
    this.replayed = 0;
    this.armReplayTimer();
  }

  private armReplayTimer(): void {
    if (this.replayTimer) clearTimeout(this.replayTimer);
    this.replayTimer = setTimeout(() => {
      this.replayTimer = null;
      const replayed = this.replayed ?? 0;
      this.replayed = null;
      if (!this.closed) this.handlers.caught_up?.({ replayed });
    }, this.replayQuietMs);
  }

  private stopReplayCount(): void {
    if (this.replayTimer) clearTimeout(this.replayTimer);
    this.replayTimer = null;
    this.replayed = null;
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.stopReplayCount();
  }

  private setState(state: ConnectionState): void {
    if (this.currentState === state && state !== 'connecting') return;
    this.currentState = state;
    this.handlers.state?.(state);
  }
}

const UNSTORED_EVENTS: ReadonlySet<StreamEventName> = new Set([
  'connected',
  'user_typing',
  'reset',
]);

function storedEventId(name: StreamEventName, lastEventId: string): string | null {
  if (UNSTORED_EVENTS.has(name) || !lastEventId) return null;
  return lastEventId;
}

/** Ids are decimal sequence numbers; anything else is compared as opaque (always "after"). */
function isAfter(id: string, previous: string): boolean {
  if (/^\d+$/.test(id) && /^\d+$/.test(previous)) {
    return id.length !== previous.length ? id.length > previous.length : id > previous;
  }
  return id !== previous;
}
