/**
 * Typed client for the track comments service (CONTRACT.md sections 4 and 5).
 *
 * Runs unchanged in browsers (globals `fetch` and `EventSource`, cookie auth) and in
 * Node 20 (pass `EventSource` from the `eventsource` package, and `headers` with an
 * `Authorization: Bearer …`). It is compiled without a bundler to an ES module in
 * `public/build/client/`, so its imports name the emitted `.js` file or are types only (they
 * vanish from the output): the comment and event shapes are the server's own, from
 * src/events/catalogue.ts. The stream half is in ./stream-subscription.ts; streams shared by
 * the tabs of one user (`sharedAs`) in ./shared-stream.ts.
 */

import type { Comment } from '../events/catalogue';
import {
  StreamSubscription,
  type EventSourceConstructor,
  type FetchLike,
  type StreamHandlers,
  type SubscribeOptions,
  type Subscription,
} from './stream-subscription.js';
import {
  SharedStreamSubscription,
  browserSharing,
  sharedStreamName,
  type SharingSeams,
} from './shared-stream.js';

export type * from '../events/catalogue';
export type { ChannelLike, LockManagerLike, SharingSeams } from './shared-stream.js';
export type {
  ConnectionState,
  EventMeta,
  EventSourceConstructor,
  EventSourceInitLike,
  EventSourceLike,
  FetchLike,
  StreamError,
  StreamHandlers,
  SubscribeOptions,
  Subscription,
} from './stream-subscription.js';

// ---------------------------------------------------------------------------
// Data (contract section 3)

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

export interface ClientOptions {
  /** Origin (and path prefix) of the service; '' (default) means same origin. Required in Node. */
  baseUrl?: string;
  EventSource?: EventSourceConstructor;
  fetch?: FetchLike;
  /** Send cookies to a cross-origin service (it must list this origin in CORS_ORIGINS). */
  withCredentials?: boolean;
  /** Extra request headers, e.g. `Authorization` in Node (browsers cannot set them on EventSource). */
  headers?: Record<string, string>;
  /**
   * How streams subscribed with `sharedAs` are shared across tabs: unset uses the browser's
   * Web Locks and BroadcastChannel when present; `false` turns sharing off (every tab opens its
   * own).
   */
  sharing?: SharingSeams | false;
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
  // Tabs share streams subscribed with `sharedAs` through these (null: each tab its own).
  const sharing = options.sharing === false ? null : (options.sharing ?? browserSharing());

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

  /** One stream: shared with the other tabs of this user when asked and possible, else own. */
  function subscribe(
    path: string,
    handlers: StreamHandlers,
    subscribeOptions: SubscribeOptions = {},
  ): Subscription {
    const { sharedAs, ...streamOptions } = subscribeOptions;
    if (!sharing || sharedAs === undefined) return openOwn(path, handlers, streamOptions);
    return new SharedStreamSubscription(
      sharing,
      sharedStreamName(url(path), sharedAs),
      (ownHandlers, ownOptions) => openOwn(path, ownHandlers, ownOptions),
      handlers,
      streamOptions,
    );
  }

  function openOwn(
    path: string,
    handlers: StreamHandlers,
    subscribeOptions: SubscribeOptions,
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
