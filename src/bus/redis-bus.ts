import Redis, { type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { BusMessage } from '../events/types';
import { redactUrlPassword } from '../config/redact-url';
import type { Metrics } from '../metrics/metrics';
import type { Bus } from './types';
import { decodeBusPayload, encodeBusPayload } from './wire';

export interface RedisBusOptions {
  url: string;
  logger: Logger;
  metrics?: Metrics;
  /** Prepended to the stream name to form the channel. Default 'tc:'. */
  channelPrefix?: string;
}

/** publish() while the publishing connection is not up: the caller retries later. */
export class BusUnavailableError extends Error {
  constructor(message = 'Redis bus is not connected', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BusUnavailableError';
  }
}

const HEALTH_TIMEOUT_MS = 500;
const CONNECT_TIMEOUT_MS = 5000;
const SUBSCRIBE_CHUNK = 1000;
const OUTAGE_LOG_INTERVAL_MS = 30_000;
const UNDECODABLE_LOG_INTERVAL_MS = 10_000;

/** The URL with its password replaced, for logs and error messages. */
export const redactRedisUrl = (url: string): string =>
  redactUrlPassword(url, '<unparseable redis url>');

// Fail fast instead of queueing: the outbox relay republishes what publish() rejected, and the
// subscriber's channels are restored by this class (not ioredis) so calls made during an outage
// are not lost or replayed out of order.
const CONNECTION_OPTIONS: RedisOptions = {
  retryStrategy: (attempt) =>
    Math.min(50 * 2 ** Math.min(attempt - 1, 10), 900) + Math.floor(Math.random() * 100),
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResubscribe: false,
  autoResendUnfulfilledCommands: false,
  commandTimeout: 1000,
  connectTimeout: 2000,
  // disconnect() arms a timer (not unref'd) to destroy a socket that never closes; a socket that
  // is already gone between retries never closes again, so keep it short or it delays exit.
  disconnectTimeout: 200,
};

type ConnectionName = 'publisher' | 'subscriber';

/**
 * Cross-replica bus over Redis pub/sub: a channel per stream (`<prefix><stream>`),
 * subscribed only while the hub asks. One connection publishes, one subscribes.
 */
export class RedisBus implements Bus {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly logger: Logger;
  private readonly metrics: Metrics | undefined;
  private readonly prefix: string;
  /** Streams the hub wants; the subscriber connection is brought to exactly this set. */
  private readonly desired = new Set<string>();
  private handler: ((message: BusMessage) => void) | null = null;
  private readonly reconnectHandlers: (() => void)[] = [];
  private closed = false;
  private subscriberWasReady = false;
  /** A subscribe() resolved while the subscriber was down: catch-up needed once it is up. */
  private subscribedWhileDown = false;
  private lastError: string | undefined;
  private readonly outage: Record<ConnectionName, { logged: boolean; lastLogAt: number }> = {
    publisher: { logged: false, lastLogAt: 0 },
    subscriber: { logged: false, lastLogAt: 0 },
  };
  private undecodable = { lastLogAt: 0, suppressed: 0 };
  /** The publisher's socket while corked (see corkForThisTurn). */
  private corked: Redis['stream'] | null = null;

  /** Connects in the background; prefer `RedisBus.connect` to fail fast at startup. */
  constructor(opts: RedisBusOptions) {
    this.logger = opts.logger.child({ component: 'bus' });
    this.metrics = opts.metrics;
    this.prefix = opts.channelPrefix ?? 'tc:';
    this.logger.info({ redis: redactRedisUrl(opts.url) }, 'connecting Redis bus');
    this.pub = new Redis(opts.url, { ...CONNECTION_OPTIONS, connectionName: 'tc-bus-pub' });
    this.sub = new Redis(opts.url, { ...CONNECTION_OPTIONS, connectionName: 'tc-bus-sub' });
    this.watch(this.pub, 'publisher');
    this.watch(this.sub, 'subscriber');
    this.sub.on('ready', () => this.onSubscriberReady());
    this.sub.on('message', this.onRedisMessage);
  }

  /**
   * A bus whose two connections are up; rejects (and closes the attempt) if they are not
   * within `timeoutMs` (default 5 s).
   */
  static async connect(opts: RedisBusOptions & { timeoutMs?: number }): Promise<RedisBus> {
    const bus = new RedisBus(opts);
    const timeoutMs = opts.timeoutMs ?? CONNECT_TIMEOUT_MS;
    try {
      await bus.whenReady(timeoutMs);
    } catch (err) {
      await bus.close();
      const reason = bus.lastError ? ` (last error: ${bus.lastError})` : '';
      throw new Error(
        `Redis bus: no connection to ${redactRedisUrl(opts.url)} within ${timeoutMs} ms${reason}`,
        { cause: err },
      );
    }
    return bus;
  }

  publish(message: BusMessage): Promise<void> {
    if (this.closed) return Promise.reject(new BusUnavailableError('Redis bus is closed'));
    if (this.pub.status !== 'ready') return Promise.reject(new BusUnavailableError());
    this.corkForThisTurn();
    return this.pub
      .publish(this.prefix + message.stream, encodeBusPayload(message))
      .then(noop, rejectUnavailable);
  }

  /**
   * Publishes issued together (a commit's new_comment and mention, issued in one loop) leave
   * in one write instead of one each: on loopback a write(2) costs the sender the receiver's
   * TCP work too, and it was a quarter of a POST's replica time. The order on the connection
   * is unchanged. The socket is uncorked in a microtask, not at the next tick: the request
   * that committed awaits before it writes its response, so the events leave first (with
   * nextTick they waited for the response's write and everything else in the turn).
   */
  private corkForThisTurn(): void {
    if (this.corked !== null) return;
    const socket = this.pub.stream;
    if (!socket || typeof socket.cork !== 'function') return;
    socket.cork();
    this.corked = socket;
    queueMicrotask(this.uncork);
  }

  private readonly uncork = (): void => {
    const socket = this.corked;
    this.corked = null;
    socket?.uncork();
  };

  async subscribe(stream: string): Promise<void> {
    if (this.closed) throw new BusUnavailableError('Redis bus is closed');
    this.desired.add(stream);
    if (this.sub.status !== 'ready') {
      this.subscribedWhileDown = true;
      return;
    }
    try {
      await this.sub.subscribe(this.prefix + stream);
    } catch (err) {
      // Connection lost meanwhile: the reconnect restores `desired` and fires onReconnect.
      this.logger.debug({ stream, err: errorText(err) }, 'subscribe not confirmed');
    }
  }

  async unsubscribe(stream: string): Promise<void> {
    this.desired.delete(stream);
    if (this.closed || this.sub.status !== 'ready') return;
    try {
      await this.sub.unsubscribe(this.prefix + stream);
    } catch (err) {
      // A new connection starts with no channels; messages of undesired streams are dropped anyway.
      this.logger.debug({ stream, err: errorText(err) }, 'unsubscribe not confirmed');
    }
  }

  onMessage(handler: (message: BusMessage) => void): void {
    this.handler = handler;
  }

  onReconnect(handler: () => void): void {
    this.reconnectHandlers.push(handler);
  }

  async isHealthy(): Promise<boolean> {
    if (this.closed || this.pub.status !== 'ready' || this.sub.status !== 'ready') return false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), HEALTH_TIMEOUT_MS);
    });
    try {
      return await Promise.race([
        Promise.all([this.pub.ping(), this.sub.ping()]).then(
          () => true,
          () => false,
        ),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.desired.clear();
    await Promise.all([shutdown(this.pub), shutdown(this.sub)]);
  }

  // Every subscribed channel carries the prefix; messages for streams no longer desired are in
  // flight from before an UNSUBSCRIBE and are dropped.
  private readonly onRedisMessage = (channel: string, payload: string): void => {
    const stream = channel.slice(this.prefix.length);
    if (!this.desired.has(stream)) return;
    const message = decodeBusPayload(stream, payload);
    if (message === null) {
      this.warnUndecodable(channel, payload.length);
      return;
    }
    if (this.handler === null) return;
    try {
      this.handler(message);
    } catch (err) {
      this.logger.error({ err, stream }, 'bus message handler threw');
    }
  };

  private onSubscriberReady(): void {
    const afterOutage = this.subscriberWasReady;
    const catchUp = afterOutage || this.subscribedWhileDown;
    this.subscriberWasReady = true;
    this.subscribedWhileDown = false;
    if (this.closed) return;
    if (afterOutage) {
      this.metrics?.busReconnects.inc();
      this.logger.info({ streams: this.desired.size }, 'Redis bus reconnected');
    }
    // Sent synchronously in one go so that later subscribe/unsubscribe calls are ordered after it.
    const channels = Array.from(this.desired, (stream) => this.prefix + stream);
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < channels.length; i += SUBSCRIBE_CHUNK) {
      pending.push(this.sub.subscribe(...channels.slice(i, i + SUBSCRIBE_CHUNK)));
    }
    Promise.all(pending).then(
      () => {
        if (catchUp && !this.closed) this.fireReconnect();
      },
      (err: unknown) => {
        // Lost again before the channels were restored: the next 'ready' retries.
        this.subscribedWhileDown = true;
        this.logger.warn({ err: errorText(err) }, 'Redis bus resubscribe failed');
      },
    );
  }

  private fireReconnect(): void {
    for (const handler of this.reconnectHandlers) {
      try {
        handler();
      } catch (err) {
        this.logger.error({ err }, 'bus reconnect handler threw');
      }
    }
  }

  private watch(conn: Redis, name: ConnectionName): void {
    const state = this.outage[name];
    conn.on('error', (err: Error) => {
      this.lastError = err.message;
      const now = Date.now();
      if (state.logged && now - state.lastLogAt < OUTAGE_LOG_INTERVAL_MS) return;
      state.logged = true;
      state.lastLogAt = now;
      this.logger.warn({ connection: name, err: err.message }, 'Redis bus connection error');
    });
    conn.on('close', () => {
      if (this.closed || state.logged) return;
      state.logged = true;
      state.lastLogAt = Date.now();
      this.logger.warn({ connection: name }, 'Redis bus connection lost');
    });
    conn.on('ready', () => {
      state.logged = false;
    });
  }

  private warnUndecodable(channel: string, length: number): void {
    const now = Date.now();
    if (now - this.undecodable.lastLogAt < UNDECODABLE_LOG_INTERVAL_MS) {
      this.undecodable.suppressed += 1;
      return;
    }
    this.logger.warn(
      { channel, length, suppressed: this.undecodable.suppressed },
      'ignored undecodable bus message',
    );
    this.undecodable = { lastLogAt: now, suppressed: 0 };
  }

  private whenReady(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error('timed out'));
      }, timeoutMs);
      const check = () => {
        if (this.pub.status === 'ready' && this.sub.status === 'ready') {
          cleanup();
          resolve();
        }
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.pub.off('ready', check);
        this.sub.off('ready', check);
      };
      this.pub.on('ready', check);
      this.sub.on('ready', check);
      check();
    });
  }
}

function noop(): void {}

function rejectUnavailable(err: unknown): never {
  throw new BusUnavailableError(`Redis bus publish failed: ${errorText(err)}`, { cause: err });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** QUIT when connected, else stop reconnecting; waits (bounded) for the socket to close. */
async function shutdown(conn: Redis): Promise<void> {
  if (conn.status === 'end') return;
  const ended = new Promise<void>((resolve) => conn.once('end', () => resolve()));
  if (conn.status === 'ready') {
    try {
      await conn.quit();
    } catch {
      conn.disconnect();
    }
  } else {
    conn.disconnect();
    // No socket is open between retries, so no 'end' will follow.
    if (conn.status === 'reconnecting') return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    ended,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 1000);
    }),
  ]);
  clearTimeout(timer);
}
