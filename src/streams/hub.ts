import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type pino from 'pino';
import type { Bus } from '../bus/types';
import type { BusMessage, EventData, EventLogReader } from '../events/types';
import { UNAVAILABLE } from '../events/error-body';
import type { Metrics } from '../metrics/metrics';
import { StreamChannel, type ChannelHost, type StreamKind } from './channel';
import { ExpiryWheel } from './expiry-wheel';
import { HeartbeatRing } from './heartbeat-ring';
import { PING_FRAME, retryText } from './frames';
import { BatchedHeadReads } from './head-reads';
import { READ_BATCH, Replay } from './replay';
import { StreamSession } from './session';
import { answerHead, connectedFrame, refuse, startStream, type ExtraHeaders } from './sse-response';

export type { StreamKind } from './channel';

export interface StreamTarget {
  /** `track:<id>` or `user:<id>` (see events/types.ts). */
  stream: string;
  kind: StreamKind;
  /** The track of a track stream; null for the personal stream. */
  trackId: string | null;
  /** The authenticated user who opens the stream (for the per-user cap). */
  userId: number;
  /** `Last-Event-ID` header, else `?last_event_id=`; undefined → no replay. */
  lastEventId: string | undefined;
  /** When the token the stream was opened with expires (epoch ms): the stream ends then. */
  expiresAt?: number;
  /**
   * More response headers (security, CORS, request id) for the stream's or the
   * refusal's head. Passed here rather than set on `res` beforehand, an open
   * stream keeps no per-response header map.
   */
  headers?: ExtraHeaders;
}

export interface StreamHubOptions {
  bus: Bus;
  log: EventLogReader;
  logger: pino.Logger;
  metrics: Metrics;
  heartbeatMs: number;
  retryMs: number;
  maxBufferBytes: number;
  maxStreamsPerUser: number;
  maxStreamsPerReplica: number;
}

/** `retry:` sent on drain: reconnect soon, to another replica. */
const DRAIN_RETRY_MS = 500;
/** After the drain spread, sockets that did not close are destroyed after this grace. */
const DRAIN_GRACE_MS = 1000;
const DRAIN_TICK_MS = 20;
const REFUSAL_RETRY_AFTER_S = 5;

/**
 * The streams of this replica (centrifuge's hub): which sessions and channels exist, the caps,
 * the bus subscriptions, the heartbeat, token expiry and drain. Delivery order lives in
 * channel.ts, resume in replay.ts, the HTTP response in sse-response.ts.
 */
export class StreamHub {
  private readonly bus: Bus;
  private readonly log: EventLogReader;
  private readonly logger: pino.Logger;
  private readonly metrics: Metrics;
  private readonly retryMs: number;
  private readonly maxStreamsPerUser: number;
  private readonly maxStreamsPerReplica: number;
  private readonly replay: Replay;
  /** What every channel shares (one object for the hub, not one per stream or session). */
  private readonly host: ChannelHost;

  private readonly channels = new Map<string, StreamChannel>();
  private readonly perUser = new Map<number, number>();
  private readonly counts: Record<StreamKind, number> = { track: 0, user: 0 };
  /** Per-stream chain of bus subscribe/unsubscribe calls, so they reach the bus in order. */
  private readonly busOps = new Map<string, Promise<void>>();
  /** Ends each stream when its token expires: one timer for all of them. */
  private readonly expiry = new ExpiryWheel<StreamSession>((s) => this.expire(s));

  /** Every open session, in the groups the heartbeat pings one after the other. */
  private readonly all: HeartbeatRing<StreamSession>;
  private draining = false;
  private closed = false;
  private drained: Promise<void> | null = null;
  private drainTimer: NodeJS.Timeout | null = null;
  private onEmpty: (() => void) | null = null;

  constructor(opts: StreamHubOptions) {
    this.bus = opts.bus;
    this.log = opts.log;
    this.logger = opts.logger.child({ component: 'stream-hub' });
    this.metrics = opts.metrics;
    this.retryMs = opts.retryMs;
    this.maxStreamsPerUser = opts.maxStreamsPerUser;
    this.maxStreamsPerReplica = opts.maxStreamsPerReplica;
    // Heads requested in one tick: one log query serves them all.
    const heads = new BatchedHeadReads(opts.log);
    const { log, logger, metrics } = this;
    this.replay = new Replay({ log, heads, metrics, maxBufferBytes: opts.maxBufferBytes });
    this.host = {
      log,
      heads,
      logger,
      metrics,
      replay: this.replay,
      maxBufferBytes: opts.maxBufferBytes,
      subscribe: (stream) => this.busOp(stream, () => this.bus.subscribe(stream)),
      dropSlow: (session) => this.dropSlow(session),
      failed: (channel) => this.failChannel(channel),
    };
    this.bus.onMessage(this.onBusMessage);
    this.bus.onReconnect(() => {
      this.catchUp().catch((err: unknown) =>
        this.logger.error({ err }, 'catch-up after bus reconnect failed'),
      );
    });
    // One timer for every connection (per-connection timers cost memory and wakeups), its
    // pings spread over the interval rather than written in one burst.
    this.all = new HeartbeatRing(this.ping, { intervalMs: opts.heartbeatMs });
  }

  // ---------------------------------------------------------------- public API

  async open(req: IncomingMessage, res: ServerResponse, target: StreamTarget): Promise<void> {
    if (this.refused(res, target)) return;
    const socket = res.socket ?? req.socket;
    if (!socket || socket.destroyed) return; // the client is already gone
    if (req.method === 'HEAD') {
      answerHead(res, target.headers);
      return;
    }

    let channel = this.channelFor(target);
    if (!channel.isReady) {
      // The stream's log head is not read yet on this replica: wait for that read, so that a
      // database (or bus) outage is answered 503 before any of the stream goes out.
      if (!(await channel.initialized)) {
        const { code, message, retryAfterS } = UNAVAILABLE;
        refuse(res, 503, code, message, retryAfterS, target.headers);
        return;
      }
      if (socket.destroyed || this.refused(res, target)) {
        if (channel.members === 0) this.dropChannel(channel);
        return;
      }
      channel = this.channelFor(target); // the same one, unless it was dropped meanwhile
    }
    const session = new StreamSession(socket, channel, target.userId);
    this.register(session);
    if (target.expiresAt !== undefined) this.expiry.add(session, target.expiresAt);
    // `on`, not `once`: close fires once anyway, and a once-wrapper per stream costs memory.
    socket.on('close', () => this.remove(session));
    socket.setTimeout(0); // an idle stream is normal; the heartbeat keeps proxies awake
    socket.setNoDelay(true);

    const greeting = connectedFrame(target.kind, target.trackId);
    this.metrics.eventsDelivered.inc({ type: 'connected' });
    const lastEventId = target.lastEventId?.trim() ?? '';
    const resuming = lastEventId !== '';
    // A resume gets `connected` at once, its replay follows. A fresh session gets it only as it
    // joins the live set (channel.ts, step 3d): an event committed after the client saw
    // `connected` is then always delivered to it.
    if (!resuming) session.greeting = greeting;
    startStream(req, res, socket, target.headers, this.retryMs, resuming ? greeting : '');

    try {
      if (resuming) await this.replay.resume(session, lastEventId);
      if (session.ended) return;
      await channel.join(session);
      // The join failed (log unreachable): let the client reconnect and resume instead of idling.
      if (!session.ended && !channel.live.has(session)) session.end();
    } catch (err) {
      this.logger.error(
        { err, stream: target.stream },
        'stream setup failed; closing the connection',
      );
      session.end();
    }
  }

  async publishEphemeral(stream: string, data: EventData): Promise<void> {
    await this.bus.publish({ stream, seq: null, type: data.type, data: JSON.stringify(data) });
  }

  /** Delivers what the log holds beyond what each stream delivered (after a bus reconnect). */
  async catchUp(): Promise<void> {
    const channels = [...this.channels.values()].filter((c) => !c.isClosed);
    for (let i = 0; i < channels.length; i += READ_BATCH) {
      const slice = channels.slice(i, i + READ_BATCH);
      const heads = await this.log.heads(slice.map((c) => c.stream));
      await Promise.all(slice.map((c) => c.fill(heads.get(c.stream)?.lastSeq ?? 0)));
    }
  }

  drain(spreadMs: number): Promise<void> {
    this.drained ??= this.closeSpread(spreadMs);
    return this.drained;
  }

  openStreams(): { track: number; user: number } {
    return { track: this.counts.track, user: this.counts.user };
  }

  close(): void {
    this.closed = true;
    this.draining = true;
    this.all.close();
    this.clearDrainTimer();
    this.expiry.close();
    for (const session of [...this.all]) {
      session.destroy();
      this.remove(session);
    }
  }

  // ---------------------------------------------------------------- asked by channels

  private dropSlow(session: StreamSession): void {
    this.metrics.slowSubscriberDisconnects.inc();
    this.logger.debug(
      { stream: session.channel.stream, unsent: session.socket.writableLength },
      'slow subscriber disconnected',
    );
    session.destroy();
    this.remove(session);
  }

  /** No bus subscription or head, so the stream cannot be served: clients reconnect and resume. */
  private failChannel(channel: StreamChannel): void {
    this.dropChannel(channel);
    for (const session of [...this.all]) if (session.channel === channel) session.end();
  }

  // ---------------------------------------------------------------- registry and caps

  /** Refuses the stream (answering `res`) when draining or over a cap. */
  private refused(res: ServerResponse, target: StreamTarget): boolean {
    const h = target.headers;
    if (this.draining || this.closed) {
      const message = 'This server is shutting down; reconnect shortly.';
      refuse(res, 503, 'shutting_down', message, 1, h);
    } else if ((this.perUser.get(target.userId) ?? 0) >= this.maxStreamsPerUser) {
      const message = `At most ${this.maxStreamsPerUser} open streams per user; close one first.`;
      refuse(res, 429, 'too_many_streams', message, REFUSAL_RETRY_AFTER_S, h);
    } else if (this.all.size >= this.maxStreamsPerReplica) {
      const message = 'This server has no room for more streams; retry shortly.';
      refuse(res, 503, 'replica_full', message, REFUSAL_RETRY_AFTER_S, h);
    } else {
      return false;
    }
    return true;
  }

  private channelFor(target: StreamTarget): StreamChannel {
    let channel = this.channels.get(target.stream);
    if (!channel) {
      channel = new StreamChannel(target.stream, target.kind, target.trackId, this.host);
      this.channels.set(target.stream, channel);
    }
    return channel;
  }

  private dropChannel(channel: StreamChannel): void {
    if (!channel.close()) return;
    const stream = channel.stream;
    if (this.channels.get(stream) === channel) this.channels.delete(stream);
    this.busOp(stream, () => this.bus.unsubscribe(stream)).catch((err: unknown) =>
      this.logger.warn({ err, stream }, 'bus unsubscribe failed'),
    );
  }

  /** Subscribe/unsubscribe of one stream reach the bus in call order. */
  private busOp(stream: string, op: () => Promise<void>): Promise<void> {
    const previous = this.busOps.get(stream) ?? Promise.resolve();
    const result = previous.then(op);
    const tail = result.catch(() => undefined);
    this.busOps.set(stream, tail);
    void tail.then(() => {
      if (this.busOps.get(stream) === tail) this.busOps.delete(stream);
    });
    return result;
  }

  private readonly onBusMessage = (message: BusMessage): void => {
    this.channels.get(message.stream)?.receive(message);
  };

  private register(session: StreamSession): void {
    const kind = session.channel.kind;
    this.all.add(session);
    this.perUser.set(session.userId, (this.perUser.get(session.userId) ?? 0) + 1);
    this.counts[kind]++;
    this.metrics.openStreams.inc({ kind });
    session.channel.members++;
  }

  /** Idempotent: called on socket close, and directly when the hub closes a connection. */
  private remove(session: StreamSession): void {
    if (!this.all.delete(session)) return;
    session.ended = true;
    this.expiry.remove(session);
    const left = (this.perUser.get(session.userId) ?? 1) - 1;
    if (left > 0) this.perUser.set(session.userId, left);
    else this.perUser.delete(session.userId);
    const channel = session.channel;
    this.counts[channel.kind]--;
    this.metrics.openStreams.dec({ kind: channel.kind });
    channel.live.delete(session);
    if (--channel.members === 0) this.dropChannel(channel);
    if (this.all.size === 0 && this.onEmpty) {
      const resolve = this.onEmpty;
      this.onEmpty = null;
      resolve();
    }
  }

  /** The stream's token expired: the client reconnects with a fresh one and resumes. */
  private expire(session: StreamSession): void {
    this.logger.debug({ stream: session.channel.stream }, 'token expired; stream ended');
    session.end();
  }

  private readonly ping = (session: StreamSession): void => {
    // Not before `connected` (the contract puts it right after the retry hint) or a `reset`.
    if (session.greeting === null) session.write(PING_FRAME);
  };

  // ---------------------------------------------------------------- drain

  /** Closes every stream with a short `retry:`, spread over `spreadMs`; refuses new ones. */
  private closeSpread(spreadMs: number): Promise<void> {
    this.draining = true;
    const sessions = [...this.all];
    const emptied = new Promise<void>((resolve) => {
      if (this.all.size === 0) resolve();
      else this.onEmpty = resolve;
    });
    if (sessions.length === 0) return emptied;
    const goodbye = Buffer.from(retryText(DRAIN_RETRY_MS), 'utf8');
    const start = performance.now();
    let next = 0;
    const closeDue = () => {
      const elapsed = performance.now() - start;
      const due =
        spreadMs <= 0
          ? sessions.length
          : Math.min(sessions.length, Math.ceil((sessions.length * elapsed) / spreadMs));
      for (; next < due; next++) {
        const session = sessions[next]!;
        if (session.ended) continue;
        session.write(goodbye);
        session.end();
      }
      if (next < sessions.length) {
        this.drainTimer = setTimeout(closeDue, DRAIN_TICK_MS);
      } else {
        // Clients that never close their side are cut off after a grace period.
        this.drainTimer = setTimeout(() => {
          for (const s of sessions) if (this.all.has(s)) s.socket.destroy();
        }, DRAIN_GRACE_MS);
      }
    };
    closeDue();
    return emptied.finally(() => this.clearDrainTimer());
  }

  private clearDrainTimer(): void {
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.drainTimer = null;
  }
}
