import net from 'node:net';
import { nowMs } from './clock';
import { PROTOCOLS, type Protocol, type ServerKind } from './protocol';
import { indexOfWithin, SseResponseParser, type ResponseHead, type SseFrame } from './sse-parser';

/** Where every subscriber socket of this process reads into (see open()). */
const SHARED_READ_BUFFER = Buffer.alloc(64 * 1024);

/** Where a subscriber connects: a replica (or nginx) on loopback. */
export interface Target {
  host: string;
  port: number;
}

/** Everything a pool needs to open its subscribers; plain data so it can cross IPC. */
export interface PoolPlan {
  /** Marker that prefixes the bench's comment contents: `bench:<runTag>:<commentNo>:`. */
  runTag: string;
  trackIds: string[];
  targets: Target[];
  /** JWT per bench user (index = user slot, not user id). */
  tokens: string[];
  /** One entry per subscriber: [global index, track slot, target slot, user slot]. */
  subscribers: [number, number, number, number][];
  /** Streams being opened at once (each waits for its `connected` event). */
  connectConcurrency: number;
  /** Delay before a dropped stream reconnects with Last-Event-ID. */
  reconnectDelayMs: number;
  /** A stream without its `connected` event after this long is given up (default 30 s). */
  connectTimeoutMs?: number;
  /** The server's protocol (default: this service's). */
  server?: ServerKind;
}

export interface PoolProgress {
  connected: number;
  /** Subscribers that have had a `connected` event at least once. */
  everConnected: number;
  unique: number;
  duplicates: number;
  failedConnects: number;
}

/** Final accounting of one pool. Deliveries are the first arrival of each (subscriber, comment). */
export interface PoolResult extends PoolProgress {
  /** Comment number of each unique delivery. */
  deliveryComment: Int32Array;
  /** Arrival time (clock.nowMs) of each unique delivery. */
  deliveryAt: Float64Array;
  /** Global subscriber index of each unique delivery. */
  deliverySubscriber: Int32Array;
  /** new_comment events on the wrong track (routing is the server's job). */
  misrouted: number;
  /** new_comment events whose SSE id was below one already seen by the subscriber. */
  idRegressions: number;
  /** new_comment events without this run's marker (another writer). */
  foreign: number;
  /** Frames of other types (reset, comment_edited, …) by event name. */
  otherEvents: Record<string, number>;
  /** Non-200 answers to the stream request, by status, with a sample body. */
  httpErrors: Record<string, { count: number; sample: string }>;
  socketErrors: Record<string, number>;
  /** Streams that ended while the bench still wanted them. */
  unexpectedCloses: number;
  reconnects: number;
  /** When each subscriber first got `connected`, relative to its open call (ms). */
  connectMs: Float64Array;
}

const NONE_SEEN = new Uint8Array(0);
/** Comment numbers above this are not the bench's (a run posts far fewer). */
const MAX_COMMENT_NO = 10_000_000;

/** The decimal number at `buf[pos]` ending at a non-digit, or -1 (none, or implausibly large). */
function readCommentNo(buf: Buffer, pos: number, end: number): number {
  let n = 0;
  let digits = 0;
  for (; pos < end; pos++) {
    const d = buf[pos]! - 48;
    if (d < 0 || d > 9) break;
    n = n * 10 + d;
    if (n > MAX_COMMENT_NO) return -1;
    digits++;
  }
  return digits > 0 ? n : -1;
}

/** `seen` with room for index `n` (doubling, so a run of comments grows it a few times). */
function grown(seen: Uint8Array, n: number): Uint8Array {
  const next = new Uint8Array(Math.max(n + 1, seen.length * 2, 64));
  next.set(seen);
  return next;
}

class GrowableLog {
  comment = new Int32Array(1024);
  at = new Float64Array(1024);
  sub = new Int32Array(1024);
  length = 0;

  add(comment: number, at: number, sub: number): void {
    if (this.length === this.comment.length) {
      const n = this.length * 2;
      const c = new Int32Array(n);
      c.set(this.comment);
      const a = new Float64Array(n);
      a.set(this.at);
      const s = new Int32Array(n);
      s.set(this.sub);
      this.comment = c;
      this.at = a;
      this.sub = s;
    }
    this.comment[this.length] = comment;
    this.at[this.length] = at;
    this.sub[this.length] = sub;
    this.length++;
  }
}

interface SubscriberState {
  /** Position in this pool. */
  slot: number;
  /** Global subscriber index (across pools). */
  index: number;
  trackSlot: number;
  target: Target;
  token: string;
  socket: net.Socket | undefined;
  connected: boolean;
  everConnected: boolean;
  lastEventId: string | undefined;
  lastSeq: number;
  /** Comment numbers received: one byte each, grown on demand. */
  seen: Uint8Array;
  openedAt: number;
  /** Resolves the open slot once `connected` arrived or the attempt failed. */
  settle: (() => void) | undefined;
}

/**
 * A set of SSE subscribers on raw sockets. Each socket writes one GET and
 * feeds a SseResponseParser; a `new_comment` frame is reduced to its comment
 * number (from the content marker) and its arrival time.
 */
export class SubscriberPool {
  private readonly subs: SubscriberState[];
  private readonly log = new GrowableLog();
  private readonly marker: Buffer;
  private readonly trackMarkers: Buffer[];
  private closing = false;
  private connectedNow = 0;
  private everConnected = 0;
  private duplicates = 0;
  private failedConnects = 0;
  private misrouted = 0;
  private idRegressions = 0;
  private foreign = 0;
  private unexpectedCloses = 0;
  private reconnects = 0;
  private readonly otherEvents: Record<string, number> = {};
  private readonly httpErrors: Record<string, { count: number; sample: string }> = {};
  private readonly socketErrors: Record<string, number> = {};
  private readonly connectMs: Float64Array;
  private readonly reconnectTimers = new Set<NodeJS.Timeout>();
  private readonly protocol: Protocol;

  constructor(private readonly plan: PoolPlan) {
    this.protocol = PROTOCOLS[plan.server ?? 'trackcomments'];
    this.marker = Buffer.from(`bench:${plan.runTag}:`);
    this.trackMarkers = plan.trackIds.map((t) => Buffer.from(`"track_id":${JSON.stringify(t)}`));
    this.subs = plan.subscribers.map(([index, trackSlot, targetSlot, userSlot], slot) => ({
      slot,
      index,
      trackSlot,
      target: plan.targets[targetSlot]!,
      token: plan.tokens[userSlot]!,
      socket: undefined,
      connected: false,
      everConnected: false,
      lastEventId: undefined,
      lastSeq: -1,
      seen: NONE_SEEN,
      openedAt: 0,
      settle: undefined,
    }));
    this.connectMs = new Float64Array(this.subs.length).fill(NaN);
  }

  /** Opens every subscriber, at most connectConcurrency at a time; resolves when all were tried. */
  async openAll(): Promise<void> {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < this.subs.length && !this.closing) {
        const sub = this.subs[next++]!;
        await new Promise<void>((resolve) => {
          sub.settle = resolve;
          this.open(sub);
        });
      }
    };
    const lanes = Math.max(1, Math.min(this.plan.connectConcurrency, this.subs.length));
    await Promise.all(Array.from({ length: lanes }, lane));
  }

  progress(): PoolProgress {
    return {
      connected: this.connectedNow,
      everConnected: this.everConnected,
      unique: this.log.length,
      duplicates: this.duplicates,
      failedConnects: this.failedConnects,
    };
  }

  result(): PoolResult {
    return {
      ...this.progress(),
      deliveryComment: this.log.comment.slice(0, this.log.length),
      deliveryAt: this.log.at.slice(0, this.log.length),
      deliverySubscriber: this.log.sub.slice(0, this.log.length),
      misrouted: this.misrouted,
      idRegressions: this.idRegressions,
      foreign: this.foreign,
      otherEvents: { ...this.otherEvents },
      httpErrors: structuredClone(this.httpErrors),
      socketErrors: { ...this.socketErrors },
      unexpectedCloses: this.unexpectedCloses,
      reconnects: this.reconnects,
      connectMs: this.connectMs.slice(),
    };
  }

  /** Closes every stream; no reconnects afterwards. */
  close(): void {
    this.closing = true;
    for (const t of this.reconnectTimers) clearTimeout(t);
    this.reconnectTimers.clear();
    for (const sub of this.subs) {
      sub.socket?.destroy();
      sub.socket = undefined;
      sub.settle?.();
      sub.settle = undefined;
    }
  }

  private open(sub: SubscriberState): void {
    const path = this.protocol.streamPath(this.plan.trackIds[sub.trackSlot]!);
    const lines = [
      `GET ${path} HTTP/1.1`,
      `Host: ${sub.target.host}:${sub.target.port}`,
      `Authorization: Bearer ${sub.token}`,
      'Accept: text/event-stream',
      'Cache-Control: no-cache',
    ];
    if (sub.lastEventId !== undefined) lines.push(`Last-Event-ID: ${sub.lastEventId}`);
    const request = lines.join('\r\n') + '\r\n\r\n';
    sub.openedAt = nowMs();
    // Reads land in one buffer shared by every socket of this process (the parser copies what
    // it keeps): no Buffer allocated per read, so the generator's GC competes less with the
    // servers for the same cores.
    const socket = net.connect({
      host: sub.target.host,
      port: sub.target.port,
      onread: {
        buffer: SHARED_READ_BUFFER,
        callback: (bytes: number, buf: Uint8Array) => {
          onBytes(buf as Buffer, bytes);
          return true; // keep reading
        },
      },
    });
    sub.socket = socket;
    socket.setNoDelay(true);
    let head: ResponseHead | undefined;
    const parser = new SseResponseParser(
      (h) => {
        head = h;
        if (h.status === 200 && this.protocol.openOnHead) this.markOpen(sub, nowMs());
      },
      (frame) => this.frame(sub, frame),
    );
    const connectTimer = setTimeout(() => {
      if (sub.connected || sub.socket !== socket) return;
      this.socketErrors['connect timeout'] = (this.socketErrors['connect timeout'] ?? 0) + 1;
      socket.destroy();
    }, this.plan.connectTimeoutMs ?? 30000);
    socket.on('connect', () => socket.write(request));
    const onBytes = (buf: Buffer, bytes: number) => {
      if (socket.destroyed) return;
      parser.push(buf.subarray(0, bytes));
      if (parser.protocolError) socket.destroy(new Error(`protocol: ${parser.protocolError}`));
      // The response is over though the connection may be kept alive: this stream has ended.
      else if (parser.ended) socket.destroy();
    };
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const key = err.code ?? err.message;
      this.socketErrors[key] = (this.socketErrors[key] ?? 0) + 1;
    });
    socket.on('close', () => {
      clearTimeout(connectTimer);
      if (sub.socket !== socket) return;
      sub.socket = undefined;
      if (sub.connected) {
        sub.connected = false;
        this.connectedNow--;
      }
      if (head && head.status !== 200) {
        const key = String(head.status);
        const e = (this.httpErrors[key] ??= { count: 0, sample: '' });
        e.count++;
        if (!e.sample) e.sample = parser.errorBody.slice(0, 300);
      }
      if (this.closing) return;
      if (sub.settle) {
        // Never got `connected`: a failed open. The bench reports it; it does not retry.
        this.failedConnects++;
        sub.settle();
        sub.settle = undefined;
        return;
      }
      // A live stream dropped: reconnect and resume, as a client would.
      this.unexpectedCloses++;
      const timer = setTimeout(() => {
        this.reconnectTimers.delete(timer);
        if (this.closing) return;
        this.reconnects++;
        this.open(sub);
      }, this.plan.reconnectDelayMs);
      this.reconnectTimers.add(timer);
    });
  }

  /** The stream is open: counted, and its open slot freed for the next one. */
  private markOpen(sub: SubscriberState, at: number): void {
    if (!sub.connected) {
      sub.connected = true;
      this.connectedNow++;
    }
    if (!sub.everConnected) {
      sub.everConnected = true;
      this.everConnected++;
      this.connectMs[sub.slot] = at - sub.openedAt;
    }
    sub.settle?.();
    sub.settle = undefined;
  }

  private frame(sub: SubscriberState, frame: SseFrame): void {
    const at = nowMs();
    if (frame.event === 'new_comment') {
      if (frame.id !== undefined) {
        const seq = Number(frame.id);
        // An equal id is a repeated frame (counted as a duplicate below), a lower one a regression.
        if (seq < sub.lastSeq) this.idRegressions++;
        sub.lastSeq = Math.max(sub.lastSeq, seq);
        sub.lastEventId = frame.id;
      }
      // The data stays bytes: two native searches and the digits after the marker.
      const { dataBuf: buf, dataStart: start, dataEnd: end } = frame;
      if (indexOfWithin(buf, this.trackMarkers[sub.trackSlot]!, start, end) < 0) {
        this.misrouted++; // not a delivery: the subscriber never asked for that track
        return;
      }
      const m = indexOfWithin(buf, this.marker, start, end);
      const commentNo = m < 0 ? -1 : readCommentNo(buf, m + this.marker.length, end);
      if (commentNo < 0) {
        this.foreign++;
        return;
      }
      if (commentNo < sub.seen.length && sub.seen[commentNo] === 1) {
        this.duplicates++;
        return;
      }
      if (commentNo >= sub.seen.length) sub.seen = grown(sub.seen, commentNo);
      sub.seen[commentNo] = 1;
      this.log.add(commentNo, at, sub.index);
      return;
    }
    if (frame.event === 'connected') {
      this.markOpen(sub, at);
      return;
    }
    if (frame.id !== undefined) {
      sub.lastEventId = frame.id;
      sub.lastSeq = Number(frame.id);
    }
    this.otherEvents[frame.event] = (this.otherEvents[frame.event] ?? 0) + 1;
  }
}
