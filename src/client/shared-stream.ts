/**
 * One stream shared by all tabs of an origin signed in as the same user (issue 12).
 *
 * Over HTTP/1.1 a browser holds at most 6 connections per origin, and each EventSource keeps
 * one. So a stream (the personal one, or a track's) is opened by one tab only: the tabs queue
 * for a Web Lock named after the stream and the user; the holder (the leader) opens the
 * EventSource and passes every event on over a BroadcastChannel of the same name, with its id.
 * The browser releases the lock when the leader's tab closes; the next tab in the queue then
 * opens the stream resuming after the last id it saw (every tab sees every event), so nothing
 * is lost, and each tab drops ids it has already seen, so nothing arrives twice across the
 * handover. A tab that joins late gets the leader's state, greeting and last id.
 *
 * Imports the stream module's rules (dedupe order, event names) so they live in one place.
 */

import type { StreamEventName } from '../events/catalogue';
import {
  STREAM_EVENT_NAMES,
  isAfter,
  type ConnectionState,
  type EventMeta,
  type StreamError,
  type StreamHandlers,
  type SubscribeOptions,
  type Subscription,
} from './stream-subscription.js';

/** The part of `navigator.locks` this needs. */
export interface LockManagerLike {
  request(
    name: string,
    options: { signal?: AbortSignal },
    callback: (lock: unknown) => Promise<void>,
  ): Promise<unknown>;
}

/** The part of `BroadcastChannel` this needs (a channel never hears its own messages). */
export interface ChannelLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  close(): void;
}

export interface SharingSeams {
  locks: LockManagerLike;
  openChannel(name: string): ChannelLike;
}

/**
 * The browser's Web Locks and BroadcastChannel, or null where either is missing (Node, old
 * browsers, and pages that are not a secure context: `navigator.locks` needs https or localhost).
 */
export function browserSharing(): SharingSeams | null {
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  const locks = nav?.locks;
  if (!locks || typeof BroadcastChannel !== 'function') return null;
  return { locks, openChannel: (name) => new BroadcastChannel(name) };
}

/** The lock's and channel's name: the stream's absolute URL and the user, so other users never share. */
export function sharedStreamName(streamUrl: string, user: string | number): string {
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  const absolute = base ? new URL(streamUrl, base).href : streamUrl;
  return `trackcomments-stream ${absolute} user=${encodeURIComponent(String(user))}`;
}

/** What tabs say to each other on the channel. */
export type SharedStreamMessage =
  | { kind: 'event'; name: StreamEventName; data: unknown; id: string | null }
  /** The leader's state; also its answer to `hello`, so a tab that joins late catches up. */
  | { kind: 'state'; state: ConnectionState; lastId: string | null; connected: unknown }
  | { kind: 'caught_up'; replayed: number }
  | { kind: 'error'; error: StreamError }
  | { kind: 'hello' };

/** Opens this tab's own stream (a StreamSubscription) once it leads. */
export type OpenOwnStream = (handlers: StreamHandlers, options: SubscribeOptions) => Subscription;

export class SharedStreamSubscription implements Subscription {
  private readonly channel: ChannelLike;
  private readonly abort = new AbortController();
  /** Set while this tab leads: its own stream, and what releases the lock. */
  private own: Subscription | null = null;
  private releaseLock: (() => void) | null = null;
  private lastId: string | null;
  private currentState: ConnectionState = 'connecting';
  /** The newest `connected` data, handed to tabs that join while the stream is up. */
  private connectedData: unknown = null;
  /** Whether this tab's handlers have had a `connected` (a late joiner gets the leader's). */
  private greeted = false;
  private closed = false;

  constructor(
    seams: SharingSeams,
    name: string,
    private readonly openOwn: OpenOwnStream,
    private readonly handlers: StreamHandlers,
    private readonly options: SubscribeOptions,
  ) {
    this.lastId = options.lastEventId ?? null;
    this.handlers.state?.('connecting');
    this.channel = seams.openChannel(name);
    this.channel.addEventListener('message', (event) =>
      this.onMessage(event.data as SharedStreamMessage),
    );
    this.post({ kind: 'hello' });
    seams.locks
      .request(name, { signal: this.abort.signal }, () => this.lead())
      // AbortError after close() while still queued: nothing to do.
      .catch(() => undefined);
  }

  get lastEventId(): string | null {
    return this.lastId;
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** True while this tab holds the lock and the stream. */
  get leading(): boolean {
    return this.own !== null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.own?.close();
    this.own = null;
    this.releaseLock?.();
    this.releaseLock = null;
    this.channel.close();
    this.setState('closed');
  }

  /** Runs while this tab holds the lock; the lock is released when the returned promise settles. */
  private lead(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const held = new Promise<void>((resolve) => (this.releaseLock = resolve));
    this.own = this.openOwn(this.leaderHandlers(), { ...this.options, lastEventId: this.lastId });
    return held;
  }

  private leaderHandlers(): StreamHandlers {
    const handlers: StreamHandlers = {
      state: (state) => {
        // This tab closing is not the stream closing: the next tab takes over.
        if (this.closed) return;
        this.setState(state);
        this.post(this.stateMessage());
      },
      caught_up: (info) => {
        this.post({ kind: 'caught_up', replayed: info.replayed });
        this.handlers.caught_up?.(info);
      },
      error: (error) => {
        this.post({ kind: 'error', error });
        this.handlers.error?.(error);
      },
    };
    const relay = handlers as Record<string, (data: unknown, meta: EventMeta) => void>;
    for (const name of STREAM_EVENT_NAMES) {
      relay[name] = (data, meta) => {
        if (this.closed) return;
        this.post({ kind: 'event', name, data, id: meta.id });
        this.deliver(name, data, meta.id);
      };
    }
    return handlers;
  }

  private onMessage(message: SharedStreamMessage): void {
    if (this.closed) return;
    if (message.kind === 'hello') {
      if (this.own) this.post(this.stateMessage());
      return;
    }
    // Only the leader speaks otherwise; a leader hears no other leader (the lock is exclusive).
    if (this.own) return;
    switch (message.kind) {
      case 'event':
        this.deliver(message.name, message.data, message.id);
        return;
      case 'state':
        // Everything the leader sent before this has arrived (one sender's messages keep
        // their order), so its last id is where this tab stands too.
        if (
          message.lastId !== null &&
          (this.lastId === null || isAfter(message.lastId, this.lastId))
        )
          this.lastId = message.lastId;
        this.setState(message.state);
        if (!this.greeted && message.state === 'live' && message.connected !== null)
          this.deliver('connected', message.connected, null);
        return;
      case 'caught_up':
        this.handlers.caught_up?.({ replayed: message.replayed });
        return;
      case 'error':
        this.handlers.error?.(message.error);
        return;
    }
  }

  /** Hands an event to this tab's handlers once: stored events at or before the last id are dropped. */
  private deliver(name: StreamEventName, data: unknown, id: string | null): void {
    if (this.closed) return;
    if (id !== null && this.lastId !== null && !isAfter(id, this.lastId)) return;
    if (id !== null) this.lastId = id;
    // After a reset, ids are not comparable with the ones before it.
    if (name === 'reset') this.lastId = null;
    if (name === 'connected') {
      this.connectedData = data;
      this.greeted = true;
    }
    const handler = this.handlers[name] as ((d: unknown, m: EventMeta) => void) | undefined;
    handler?.(data, { id });
  }

  private stateMessage(): SharedStreamMessage {
    return {
      kind: 'state',
      state: this.currentState,
      lastId: this.lastId,
      connected: this.connectedData,
    };
  }

  private post(message: SharedStreamMessage): void {
    this.channel.postMessage(message);
  }

  private setState(state: ConnectionState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.handlers.state?.(state);
  }
}
