/**
 * The stream half of the typed client (CONTRACT.md section 5): one logical subscription over a
 * sequence of EventSource instances, resuming where it left off. Imports types only, so it
 * compiles to a standalone ES module for the browser.
 */

import type { StreamEventMap, StreamEventName } from '../events/catalogue';

// ---------------------------------------------------------------------------
// Events (contract section 5)

export const STREAM_EVENT_NAMES: readonly StreamEventName[] = [
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
  /**
   * Who the page is signed in as (e.g. the user id). With it, the tabs of this origin that
   * subscribe to the same stream as the same user share one connection (./shared-stream.ts);
   * without it, or where sharing is off or unavailable, this tab opens its own.
   */
  sharedAs?: string | number;
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

const FATAL_STATUSES = new Set([400, 401, 403, 404]);

/**
 * One logical subscription over a sequence of EventSource instances.
 *
 * The EventSource reconnects by itself after a dropped connection (sending
 * `Last-Event-ID`); when it gives up instead (non-200 answer, e.g. a 502 from the proxy
 * during a deploy), this creates a new one after a back-off and resumes with
 * `?last_event_id=`. Stored events whose id is not above the last one seen are dropped,
 * so a replay overlap never reaches the handlers twice.
 */
export class StreamSubscription implements Subscription {
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
export function isAfter(id: string, previous: string): boolean {
  if (/^\d+$/.test(id) && /^\d+$/.test(previous)) {
    return id.length !== previous.length ? id.length > previous.length : id > previous;
  }
  return id !== previous;
}
