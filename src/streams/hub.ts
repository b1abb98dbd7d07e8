import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type pino from 'pino';
import type { Bus } from '../bus/types';
import type {
  BusMessage,
  EventData,
  EventLogReader,
  StoredEvent,
  StreamHeadInfo,
} from '../events/types';
import type { Metrics } from '../metrics/metrics';
import { ExpiryWheel, type WheelLinks } from './expiry-wheel';
import { PING_FRAME, encodeFrame, frameText, retryText } from './frames';
import { BatchedHeadReads } from './head-reads';
import { GAP, drained, resetFrame, storedBatches } from './replay-batches';
import { takeOverSocket } from './socket-takeover';

export type StreamKind = 'track' | 'user';

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
  headers?: Readonly<Record<string, string | string[]>>;
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

/** Events read from the log per query (replay, gap fill, catch-up). */
const READ_BATCH = 500;
/**
 * Replayed events go out in writes of at most this many bytes, and the next write waits for
 * the socket to drain to this many unsent bytes (bounded by half of maxBufferBytes).
 */
const REPLAY_WRITE_BYTES = 64 * 1024;
/** A replaying client that does not read for this long is dropped as slow. */
const REPLAY_STALL_MS = 30_000;
/** `retry:` sent on drain: reconnect soon, to another replica. */
const DRAIN_RETRY_MS = 500;
/**
 * Two replicas publishing one stream often deliver seq N+1 a moment before seq N: a message
 * ahead of a gap waits up to this long for the missing ones on the bus before the log is read.
 */
const GAP_WAIT_MS = 10;
/** A fill that failed (log unreachable) is retried after this long. */
const FILL_RETRY_MS = 1000;
/** After the drain spread, sockets that did not close are destroyed after this grace. */
const DRAIN_GRACE_MS = 1000;
const DRAIN_TICK_MS = 20;
const REFUSAL_RETRY_AFTER_S = 5;
const noop = (): void => undefined;

/** Stands in for a stream's sent response head (see releaseHead). */
const SENT_HEAD = 'HTTP/1.1 200 OK\r\n\r\n';

/**
 * Node keeps a response's head text on `res._header` for the response's life: for a stream
 * with security headers ~0.9 KB of the ~6 KB a stream costs. Once the head is on the socket
 * (the first write sends it) Node only tests `_header` for truthiness (headersSent, end), so
 * a shared constant replaces it.
 */
function releaseHead(res: ServerResponse): void {
  const out = res as unknown as { _header?: unknown; _headerSent?: boolean };
  if (out._headerSent === true && typeof out._header === 'string') out._header = SENT_HEAD;
}

/**
 * One open SSE connection. Kept deliberately small (no closures, no timers):
 * the hub holds thousands of these.
 */
class Subscriber implements WheelLinks<Subscriber> {
  /** Highest id written on this connection: ids are strictly increasing per connection. */
  lastSentSeq = 0;
  /** Resumed with a valid Last-Event-ID: the join must send the log tail first. */
  resumed = false;
  /** No more writes (ended, destroyed or dropped). Removed from the hub: not in `all`. */
  ended = false;
  /**
   * What to write when it joins the live set: a fresh subscriber's `connected`, or a `reset`.
   * Written then, every event committed after the client saw it reaches the client.
   */
  greeting: string | null = null;
  /** Its place in the hub's token-expiry wheel. */
  wheelNext: Subscriber | null = null;
  wheelPrev: Subscriber | null = null;
  wheelDue = -1;

  constructor(
    readonly socket: Socket,
    readonly state: StreamState,
    readonly userId: number,
  ) {}
}

interface StagedFrame {
  frame: Buffer;
  seq: number | null;
  type: string;
  /** performance.now() when the message reached this replica. */
  receivedAt: number;
}

type Job =
  | { kind: 'init' }
  | { kind: 'message'; message: BusMessage; receivedAt: number }
  | { kind: 'join'; sub: Subscriber; done: () => void }
  | { kind: 'fill'; upTo: number; done: () => void };

/** Per-stream state on this replica; exists while the stream has local subscribers. */
interface StreamState {
  readonly stream: string;
  readonly kind: StreamKind;
  readonly trackId: string | null;
  /** Subscribers receiving live events. */
  readonly live: Set<Subscriber>;
  /** Live subscribers plus those still replaying/joining. */
  members: number;
  /** Highest seq delivered live here (initialised from the log head). */
  lastSeq: number;
  ready: boolean;
  dropped: boolean;
  /** Serialized work: init, bus messages, joins and fills never interleave. */
  jobs: Job[];
  running: boolean;
  /** Frames waiting for the next flush: events that arrive together go out in one write. */
  staged: StagedFrame[];
  flushScheduled: boolean;
  /** Set while a message ahead of a gap waits for the missing ones (see GAP_WAIT_MS). */
  gapWaiter: (() => void) | null;
  /** Set while a failed fill waits to be retried: the highest seq known to exist. */
  retryUpTo: number;
  retryTimer: NodeJS.Timeout | null;
}

export class StreamHub {
  private readonly bus: Bus;
  private readonly log: EventLogReader;
  private readonly logger: pino.Logger;
  private readonly metrics: Metrics;
  private readonly retryMs: number;
  private readonly maxBufferBytes: number;
  private readonly maxStreamsPerUser: number;
  private readonly maxStreamsPerReplica: number;
  private readonly replayWriteBytes: number;

  private readonly streams = new Map<string, StreamState>();
  private readonly all = new Set<Subscriber>();
  private readonly perUser = new Map<number, number>();
  private readonly counts: Record<StreamKind, number> = { track: 0, user: 0 };
  /** Per-stream chain of bus subscribe/unsubscribe calls, so they reach the bus in order. */
  private readonly busOps = new Map<string, Promise<void>>();
  /** Ends each stream when its token expires: one timer for all of them. */
  private readonly expiry = new ExpiryWheel<Subscriber>((sub) => this.expire(sub));
  /** Heads requested in one tick: one log query serves them all. */
  private readonly heads: BatchedHeadReads;

  private heartbeat: NodeJS.Timeout | null;
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
    this.maxBufferBytes = opts.maxBufferBytes;
    this.maxStreamsPerUser = opts.maxStreamsPerUser;
    this.maxStreamsPerReplica = opts.maxStreamsPerReplica;
    this.replayWriteBytes = Math.min(REPLAY_WRITE_BYTES, opts.maxBufferBytes / 2);
    this.heads = new BatchedHeadReads(opts.log);
    this.bus.onMessage(this.onBusMessage);
    this.bus.onReconnect(() => {
      this.catchUp().catch((err: unknown) =>
        this.logger.error({ err }, 'catch-up after bus reconnect failed'),
      );
    });
    // One timer for every connection (per-connection timers cost memory and wakeups).
    this.heartbeat = setInterval(this.sendHeartbeat, opts.heartbeatMs);
    this.heartbeat.unref();
  }

  // ---------------------------------------------------------------- public API

  async open(req: IncomingMessage, res: ServerResponse, target: StreamTarget): Promise<void> {
    if (this.draining || this.closed) {
      this.refuse(
        res,
        503,
        'shutting_down',
        'This server is shutting down; reconnect shortly.',
        1,
        target.headers,
      );
      return;
    }
    if ((this.perUser.get(target.userId) ?? 0) >= this.maxStreamsPerUser) {
      this.refuse(
        res,
        429,
        'too_many_streams',
        `At most ${this.maxStreamsPerUser} open streams per user; close one first.`,
        REFUSAL_RETRY_AFTER_S,
        target.headers,
      );
      return;
    }
    if (this.all.size >= this.maxStreamsPerReplica) {
      this.refuse(
        res,
        503,
        'replica_full',
        'This server has no room for more streams; retry shortly.',
        REFUSAL_RETRY_AFTER_S,
        target.headers,
      );
      return;
    }
    const socket = res.socket ?? req.socket;
    if (!socket || socket.destroyed) return; // the client is already gone
    const head = {
      ...target.headers,
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      'X-Accel-Buffering': 'no',
    };
    if (req.method === 'HEAD') {
      // The stream's headers and no body: events are written to the socket, past Node's
      // HEAD handling, so a HEAD request must never join.
      res.writeHead(200, head);
      res.end();
      return;
    }

    const state = this.stateFor(target);
    const sub = new Subscriber(socket, state, target.userId);
    this.register(sub);
    if (target.expiresAt !== undefined) this.expiry.add(sub, target.expiresAt);
    // `on`, not `once`: close fires once anyway, and a once-wrapper per stream costs memory.
    socket.on('close', () => this.remove(sub));
    socket.setTimeout(0); // an idle stream is normal; the heartbeat keeps proxies awake
    socket.setNoDelay(true);

    // Identity body delimited by connection close: each later event is a plain
    // socket.write of a shared Buffer (no chunk framing per subscriber).
    res.useChunkedEncodingByDefault = false;
    res.shouldKeepAlive = false;
    res.writeHead(200, head);
    const connected = JSON.stringify({
      type: 'connected',
      track_id: target.trackId,
      message:
        target.kind === 'track'
          ? `Connected to track ${target.trackId}`
          : 'Connected to your personal stream',
      connection_id: randomUUID(),
    });
    const greeting = frameText(null, 'connected', connected);
    this.metrics.eventsDelivered.inc({ type: 'connected' });
    const resuming = target.lastEventId !== undefined && target.lastEventId.trim() !== '';
    if (resuming) {
      // The first write carries the headers too (one packet); the replay follows `connected`.
      res.write(retryText(this.retryMs) + greeting);
    } else {
      // A fresh subscriber gets `connected` only once it is in the live set (see join): an
      // event committed after the client saw `connected` is then always delivered to it.
      res.write(retryText(this.retryMs));
      sub.greeting = greeting;
    }
    // From here the hub owns the connection; where Node's internals are not as expected the
    // response stays attached and only its head text is dropped.
    if (!takeOverSocket(req, res, socket)) releaseHead(res);

    try {
      if (resuming) await this.replay(sub, target.lastEventId!.trim());
      if (sub.ended) return;
      await new Promise<void>((done) => this.enqueue(state, { kind: 'join', sub, done }));
      // The join failed (log unreachable): let the client reconnect and resume instead of idling.
      if (!sub.ended && !state.live.has(sub)) this.end(sub);
    } catch (err) {
      this.logger.error(
        { err, stream: target.stream },
        'stream setup failed; closing the connection',
      );
      this.end(sub);
    }
  }

  async publishEphemeral(stream: string, data: EventData): Promise<void> {
    await this.bus.publish({ stream, seq: null, type: data.type, data: JSON.stringify(data) });
  }

  async catchUp(): Promise<void> {
    const states = [...this.streams.values()].filter((s) => !s.dropped);
    for (let i = 0; i < states.length; i += READ_BATCH) {
      const slice = states.slice(i, i + READ_BATCH);
      const heads = await this.log.heads(slice.map((s) => s.stream));
      await Promise.all(
        slice.map(
          (state) =>
            new Promise<void>((done) =>
              this.enqueue(state, {
                kind: 'fill',
                upTo: heads.get(state.stream)?.lastSeq ?? 0,
                done,
              }),
            ),
        ),
      );
    }
  }

  drain(spreadMs: number): Promise<void> {
    this.drained ??= this.closeSpread(spreadMs);
    return this.drained;
  }

  private closeSpread(spreadMs: number): Promise<void> {
    this.draining = true;
    const subs = [...this.all];
    const emptied = new Promise<void>((resolve) => {
      if (this.all.size === 0) resolve();
      else this.onEmpty = resolve;
    });
    if (subs.length === 0) return emptied;
    const goodbye = Buffer.from(retryText(DRAIN_RETRY_MS), 'utf8');
    const start = performance.now();
    let next = 0;
    const closeDue = () => {
      const elapsed = performance.now() - start;
      const due =
        spreadMs <= 0
          ? subs.length
          : Math.min(subs.length, Math.ceil((subs.length * elapsed) / spreadMs));
      for (; next < due; next++) {
        const sub = subs[next]!;
        if (sub.ended) continue;
        this.write(sub, goodbye);
        this.end(sub);
      }
      if (next < subs.length) {
        this.drainTimer = setTimeout(closeDue, DRAIN_TICK_MS);
      } else {
        // Clients that never close their side are cut off after a grace period.
        this.drainTimer = setTimeout(() => {
          for (const sub of subs) if (this.all.has(sub)) sub.socket.destroy();
        }, DRAIN_GRACE_MS);
      }
    };
    closeDue();
    return emptied.finally(() => this.clearDrainTimer());
  }

  openStreams(): { track: number; user: number } {
    return { track: this.counts.track, user: this.counts.user };
  }

  close(): void {
    this.closed = true;
    this.draining = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    this.clearDrainTimer();
    this.expiry.close();
    for (const sub of [...this.all]) {
      sub.ended = true;
      sub.socket.destroy();
      this.remove(sub);
    }
  }

  // ---------------------------------------------------------------- connections

  private refuse(
    res: ServerResponse,
    status: number,
    code: string,
    message: string,
    retryAfterS: number,
    headers: Readonly<Record<string, string | string[]>> = {},
  ): void {
    if (res.headersSent) {
      res.end();
      return;
    }
    const body = JSON.stringify({ error: { code, message } });
    res.writeHead(status, {
      ...headers,
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'Retry-After': String(retryAfterS),
      'Cache-Control': 'no-store',
    });
    res.end(body);
  }

  private register(sub: Subscriber): void {
    this.all.add(sub);
    this.perUser.set(sub.userId, (this.perUser.get(sub.userId) ?? 0) + 1);
    this.counts[sub.state.kind]++;
    this.metrics.openStreams.inc({ kind: sub.state.kind });
    sub.state.members++;
  }

  /** Idempotent: called on socket close, and directly when the hub closes a connection. */
  private remove(sub: Subscriber): void {
    if (!this.all.delete(sub)) return;
    sub.ended = true;
    this.expiry.remove(sub);
    const left = (this.perUser.get(sub.userId) ?? 1) - 1;
    if (left > 0) this.perUser.set(sub.userId, left);
    else this.perUser.delete(sub.userId);
    this.counts[sub.state.kind]--;
    this.metrics.openStreams.dec({ kind: sub.state.kind });
    const state = sub.state;
    state.live.delete(sub);
    if (--state.members === 0) this.dropState(state);
    if (this.all.size === 0 && this.onEmpty) {
      const resolve = this.onEmpty;
      this.onEmpty = null;
      resolve();
    }
  }

  /** Graceful close: the end of the body; the socket closes once written. */
  private end(sub: Subscriber): void {
    if (sub.ended) return;
    sub.ended = true;
    sub.state.live.delete(sub);
    // The body ends with the connection: FIN once the written bytes are out, then close.
    const socket = sub.socket;
    socket.end();
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  }

  /** Writes unless the client has fallen too far behind, in which case it is cut off. */
  private write(sub: Subscriber, data: Buffer | string): boolean {
    if (sub.ended) return false;
    const socket = sub.socket;
    if (socket.writableLength > this.maxBufferBytes) {
      this.dropSlow(sub);
      return false;
    }
    socket.write(data);
    return true;
  }

  /** The stream's token expired: the client reconnects with a fresh one and resumes. */
  private expire(sub: Subscriber): void {
    this.logger.debug({ stream: sub.state.stream }, 'token expired; stream ended');
    this.end(sub);
  }

  private dropSlow(sub: Subscriber): void {
    this.metrics.slowSubscriberDisconnects.inc();
    this.logger.debug(
      { stream: sub.state.stream, unsent: sub.socket.writableLength },
      'slow subscriber disconnected',
    );
    sub.ended = true;
    sub.socket.destroy();
    this.remove(sub);
  }

  private readonly sendHeartbeat = (): void => {
    // Not before `connected` (the contract puts it right after the retry hint) or a `reset`.
    for (const sub of this.all) if (sub.greeting === null) this.write(sub, PING_FRAME);
  };

  private clearDrainTimer(): void {
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.drainTimer = null;
  }

  // ---------------------------------------------------------------- resume

  /**
   * Phase 1 of a resume, outside the stream's queue so a long replay to one
   * client never holds up live delivery to the others: validate the id, then
   * stream the log up to the head read now, waiting for the socket to drain.
   * The join (inside the queue) sends whatever arrived meanwhile.
   */
  private async replay(sub: Subscriber, raw: string): Promise<void> {
    const state = sub.state;
    const lastEventId = /^\d{1,15}$/.test(raw) ? Number(raw) : null;
    let reason: string | null = null;
    let head: StreamHeadInfo = { lastSeq: 0, retainedFrom: 1 };
    if (lastEventId === null) {
      reason = 'invalid_last_event_id';
    } else {
      head = (await this.heads.read(state.stream)) ?? head;
      if (lastEventId < head.retainedFrom - 1) reason = 'history_expired';
      else if (lastEventId > head.lastSeq) reason = 'unknown_last_event_id';
    }
    if (sub.ended) return;
    if (reason !== null || lastEventId === null) {
      this.reset(sub, reason ?? 'invalid_last_event_id');
      return;
    }
    this.metrics.replays.inc();
    sub.resumed = true;
    sub.lastSentSeq = lastEventId;
    // On past the head to what arrived live meanwhile: the join, unpaced, sends only the rest.
    const upTo = () => Math.max(head.lastSeq, state.lastSeq);
    while (!sub.ended && sub.resumed && sub.lastSentSeq < upTo()) {
      const events = await this.log.readAfter(state.stream, sub.lastSentSeq, READ_BATCH);
      if (sub.ended) break;
      await this.writeStored(sub, events, upTo(), true);
    }
  }

  /** Ends the resume: `reset` goes out as the subscriber joins live (see greeting). */
  private reset(sub: Subscriber, reason: string): void {
    this.metrics.resets.inc();
    this.metrics.eventsDelivered.inc({ type: 'reset' });
    sub.resumed = false;
    sub.greeting = resetFrame(sub.state.trackId, reason);
  }

  /**
   * Writes the stored events with lastSentSeq < seq <= upTo, in writes bounded in bytes; when
   * `paced`, each waits for the socket to drain. Where the seqs break (pruned after the head
   * was read), the resume ends with `reset`: the client refetches, then gets live events.
   */
  private async writeStored(
    sub: Subscriber,
    events: StoredEvent[],
    upTo: number,
    paced: boolean,
  ): Promise<void> {
    for (const batch of storedBatches(events, sub.lastSentSeq, upTo, this.replayWriteBytes)) {
      if (batch === GAP) {
        this.reset(sub, 'history_expired');
        return;
      }
      if (!this.write(sub, batch.text)) return;
      sub.lastSentSeq = batch.lastSeq;
      for (const type of batch.types) this.metrics.eventsDelivered.inc({ type });
      if (paced && !(await drained(sub.socket, this.replayWriteBytes, REPLAY_STALL_MS))) {
        if (!sub.ended) this.dropSlow(sub);
        return;
      }
    }
  }

  // ---------------------------------------------------------------- per-stream state

  private stateFor(target: StreamTarget): StreamState {
    let state = this.streams.get(target.stream);
    if (!state) {
      state = {
        stream: target.stream,
        kind: target.kind,
        trackId: target.trackId,
        live: new Set(),
        members: 0,
        lastSeq: 0,
        ready: false,
        dropped: false,
        jobs: [],
        running: false,
        staged: [],
        flushScheduled: false,
        retryUpTo: 0,
        retryTimer: null,
        gapWaiter: null,
      };
      this.streams.set(target.stream, state);
      this.enqueue(state, { kind: 'init' });
    }
    return state;
  }

  private dropState(state: StreamState): void {
    if (state.dropped) return;
    state.dropped = true;
    if (state.retryTimer) clearTimeout(state.retryTimer);
    state.retryTimer = null;
    state.staged = [];
    if (this.streams.get(state.stream) === state) this.streams.delete(state.stream);
    this.busOp(state.stream, () => this.bus.unsubscribe(state.stream)).catch((err: unknown) =>
      this.logger.warn({ err, stream: state.stream }, 'bus unsubscribe failed'),
    );
    if (!state.running) this.discardJobs(state);
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
    const state = this.streams.get(message.stream);
    if (!state || state.dropped) return;
    const receivedAt = performance.now();
    // Fast path: nothing queued and the message is in order → deliver now.
    if (state.ready && !state.running && state.jobs.length === 0) {
      if (message.seq === null || message.seq <= state.lastSeq + 1) {
        this.acceptInOrder(state, message, receivedAt);
        return;
      }
    }
    this.enqueue(state, { kind: 'message', message, receivedAt });
  };

  private enqueue(state: StreamState, job: Job): void {
    if (state.dropped) {
      this.finishJob(job);
      return;
    }
    state.jobs.push(job);
    if (job.kind === 'message') state.gapWaiter?.();
    if (!state.running) void this.runJobs(state);
  }

  private async runJobs(state: StreamState): Promise<void> {
    state.running = true;
    try {
      while (state.jobs.length > 0 && !state.dropped) {
        const job = state.jobs.shift()!;
        try {
          await this.runJob(state, job);
        } catch (err) {
          this.logger.error({ err, stream: state.stream, job: job.kind }, 'stream job failed');
          if (job.kind === 'init') this.failStream(state);
          else if (job.kind === 'message' && job.message.seq !== null)
            this.retryFill(state, job.message.seq);
          else if (job.kind === 'fill') this.retryFill(state, job.upTo);
        } finally {
          this.finishJob(job);
        }
      }
    } finally {
      state.running = false;
      if (state.dropped) this.discardJobs(state);
    }
  }

  private runJob(state: StreamState, job: Job): Promise<void> | void {
    switch (job.kind) {
      case 'init':
        return this.initStream(state);
      case 'message':
        if (job.message.seq !== null && job.message.seq > state.lastSeq + 1) {
          return this.awaitGapThenAccept(state, job.message, job.receivedAt);
        }
        this.acceptInOrder(state, job.message, job.receivedAt);
        return;
      case 'join':
        return this.join(state, job.sub);
      case 'fill':
        return this.fillTo(state, job.upTo, performance.now()).then(() => this.flush(state));
    }
  }

  /**
   * A stored event known to exist could not be read (the log was unreachable):
   * try again later rather than skip it (skipped ids could never be resumed).
   */
  private retryFill(state: StreamState, upTo: number): void {
    state.retryUpTo = Math.max(state.retryUpTo, upTo);
    if (state.retryTimer || state.dropped) return;
    state.retryTimer = setTimeout(() => {
      state.retryTimer = null;
      const target = state.retryUpTo;
      state.retryUpTo = 0;
      this.enqueue(state, { kind: 'fill', upTo: target, done: noop });
    }, FILL_RETRY_MS);
    state.retryTimer.unref();
  }

  private finishJob(job: Job): void {
    if (job.kind === 'join' || job.kind === 'fill') job.done();
  }

  private discardJobs(state: StreamState): void {
    const jobs = state.jobs;
    state.jobs = [];
    for (const job of jobs) this.finishJob(job);
  }

  /** Subscribe first, then read the head: nothing committed after the head read can be missed. */
  private async initStream(state: StreamState): Promise<void> {
    await this.busOp(state.stream, () => this.bus.subscribe(state.stream));
    const head = await this.heads.read(state.stream);
    state.lastSeq = head?.lastSeq ?? 0;
    state.ready = true;
  }

  /** Without a bus subscription or a head the stream cannot be served: clients reconnect and resume. */
  private failStream(state: StreamState): void {
    this.dropState(state);
    for (const sub of [...this.all]) if (sub.state === state) this.end(sub);
  }

  private async join(state: StreamState, sub: Subscriber): Promise<void> {
    // Frames staged before this point belong to events the subscriber gets from the log (or predate it).
    this.flush(state);
    if (sub.ended) return;
    // The replay went past what arrived here live: the log is ahead, bring everyone forward.
    if (sub.lastSentSeq > state.lastSeq) {
      await this.fillTo(state, sub.lastSentSeq, performance.now());
      this.flush(state);
    }
    while (!sub.ended && sub.resumed && sub.lastSentSeq < state.lastSeq) {
      const events = await this.log.readAfter(state.stream, sub.lastSentSeq, READ_BATCH);
      // Not paced: this runs in the stream's queue (a client that falls behind is dropped).
      await this.writeStored(sub, events, state.lastSeq, false);
    }
    if (sub.ended) return;
    if (sub.greeting !== null) {
      this.write(sub, sub.greeting);
      sub.greeting = null;
    }
    state.live.add(sub);
  }

  /** Waits briefly for the missing messages on the bus; reads the log only for what stays missing. */
  private async awaitGapThenAccept(
    state: StreamState,
    message: BusMessage,
    receivedAt: number,
  ): Promise<void> {
    const seq = message.seq!;
    if (!this.gapQueued(state, seq)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          state.gapWaiter = null;
          resolve();
        };
        const timer = setTimeout(done, GAP_WAIT_MS);
        state.gapWaiter = () => {
          if (state.dropped || this.gapQueued(state, seq)) done();
        };
      });
    }
    // Deliver the queued messages that close the gap, in seq order; duplicates drop out.
    const early: Extract<Job, { kind: 'message' }>[] = [];
    state.jobs = state.jobs.filter((job) => {
      const take =
        job.kind === 'message' &&
        job.message.seq !== null &&
        job.message.seq > state.lastSeq &&
        job.message.seq < seq;
      if (take) early.push(job);
      return !take;
    });
    early.sort((a, b) => a.message.seq! - b.message.seq!);
    for (const job of early) {
      if (job.message.seq === state.lastSeq + 1) {
        this.acceptInOrder(state, job.message, job.receivedAt);
      }
    }
    if (seq > state.lastSeq + 1) return this.fillGapThenAccept(state, message, receivedAt);
    this.acceptInOrder(state, message, receivedAt);
  }

  /** Whether every seq between lastSeq and `seq` is already queued as a bus message. */
  private gapQueued(state: StreamState, seq: number): boolean {
    const queued = new Set<number>();
    for (const job of state.jobs) {
      if (job.kind === 'message' && job.message.seq !== null) queued.add(job.message.seq);
    }
    for (let s = state.lastSeq + 1; s < seq; s++) if (!queued.has(s)) return false;
    return true;
  }

  private async fillGapThenAccept(
    state: StreamState,
    message: BusMessage,
    receivedAt: number,
  ): Promise<void> {
    this.metrics.gapFills.inc();
    await this.fillTo(state, message.seq! - 1, receivedAt);
    if (state.lastSeq < message.seq! - 1) {
      this.logger.warn(
        { stream: state.stream, from: state.lastSeq + 1, to: message.seq! - 1 },
        'events missing from the log; delivering past the gap',
      );
    }
    this.acceptInOrder(state, message, receivedAt);
  }

  /** Reads (lastSeq, upTo] from the log and stages it for the live subscribers. */
  private async fillTo(state: StreamState, upTo: number, receivedAt: number): Promise<void> {
    while (!state.dropped && state.lastSeq < upTo) {
      const events = await this.log.readAfter(
        state.stream,
        state.lastSeq,
        Math.min(READ_BATCH, upTo - state.lastSeq),
      );
      if (events.length === 0 || state.dropped) return;
      for (const e of events) {
        if (e.seq <= state.lastSeq || e.seq > upTo) continue;
        state.lastSeq = e.seq;
        this.stage(
          state,
          encodeFrame(e.seq, e.type, JSON.stringify(e.data)),
          e.seq,
          e.type,
          receivedAt,
        );
      }
    }
  }

  /** For a message that is next in order, a duplicate, or ephemeral. */
  private acceptInOrder(state: StreamState, message: BusMessage, receivedAt: number): void {
    if (message.seq !== null) {
      if (message.seq <= state.lastSeq) return; // already delivered (relay duplicate)
      state.lastSeq = message.seq;
    }
    if (state.live.size === 0) return;
    this.stage(
      state,
      encodeFrame(message.seq, message.type, message.data),
      message.seq,
      message.type,
      receivedAt,
    );
  }

  private stage(
    state: StreamState,
    frame: Buffer,
    seq: number | null,
    type: string,
    receivedAt: number,
  ): void {
    if (state.live.size === 0) return;
    state.staged.push({ frame, seq, type, receivedAt });
    if (!state.flushScheduled) {
      state.flushScheduled = true;
      queueMicrotask(() => this.flush(state));
    }
  }

  /** Writes the staged frames (encoded once) to every live subscriber: one write per subscriber. */
  private flush(state: StreamState): void {
    state.flushScheduled = false;
    const staged = state.staged;
    if (staged.length === 0) return;
    state.staged = [];
    if (state.dropped || state.live.size === 0) return;

    let firstSeq: number | null = null;
    let lastSeq: number | null = null;
    for (const f of staged) {
      if (f.seq === null) continue;
      if (firstSeq === null) firstSeq = f.seq;
      lastSeq = f.seq;
    }
    const combined =
      staged.length === 1 ? staged[0]!.frame : Buffer.concat(staged.map((f) => f.frame));
    let fullWrites = 0;
    let partial: number[] | null = null;
    for (const sub of state.live) {
      if (firstSeq !== null && sub.lastSentSeq >= firstSeq) {
        // Rare: this connection's replay already sent some of these; skip those ids.
        partial ??= new Array<number>(staged.length).fill(0);
        for (let i = 0; i < staged.length; i++) {
          const f = staged[i]!;
          if (f.seq !== null && f.seq <= sub.lastSentSeq) continue;
          if (!this.write(sub, f.frame)) break;
          partial[i]!++;
          if (f.seq !== null) sub.lastSentSeq = f.seq;
        }
        continue;
      }
      if (this.write(sub, combined)) {
        fullWrites++;
        if (lastSeq !== null) sub.lastSentSeq = lastSeq;
      }
    }
    const now = performance.now();
    for (let i = 0; i < staged.length; i++) {
      const f = staged[i]!;
      const delivered = fullWrites + (partial ? partial[i]! : 0);
      if (delivered > 0) this.metrics.eventsDelivered.inc({ type: f.type }, delivered);
      this.metrics.deliveryLag.observe((now - f.receivedAt) / 1000);
    }
  }
}
