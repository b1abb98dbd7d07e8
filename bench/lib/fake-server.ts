import http from 'node:http';
import type net from 'node:net';
import { connectedData, newCommentData } from '../../src/events/builders';

/**
 * A tiny stand-in for the real service, for the bench's self-test: track SSE
 * streams and comment POSTs with the contract's framing, plus faults injected
 * by rule so the bench's accounting can be checked against exact counts.
 * Tokens are not JWTs here: `Bearer user-<slot>`.
 */
export interface FakeFaults {
  /** Skip the live write of comment n to a subscriber of user slot u. */
  drop?: (u: number, n: number) => boolean;
  /** Write comment n twice to a subscriber of user slot u. */
  duplicate?: (u: number, n: number) => boolean;
  /** Also write comment n (of another track) to a subscriber of user slot u. */
  misroute?: (u: number, n: number) => boolean;
  /** Close the stream of a subscriber of user slot u right after comment n (once per subscriber). */
  disconnectAfter?: (u: number, n: number) => boolean;
  /** Answer POST of comment n with 500 and emit nothing. */
  failPost?: (n: number) => boolean;
  /** Body framing: chunked transfer coding (Node's default) or raw identity bytes. */
  chunked?: boolean;
  /** End lines with CRLF instead of LF. */
  crlf?: boolean;
  /** Write each frame in two pieces, split inside a line, in separate ticks. */
  splitFrames?: boolean;
}

interface FakeSub {
  user: number;
  track: string;
  /** Every write and the final destroy go through one chain, so split pieces never interleave. */
  chain: Promise<void>;
  raw: (s: string) => void;
  /** Ends the stream after what was written (a destroy could drop unflushed frames). */
  end: () => void;
}

interface LoggedEvent {
  seq: number;
  n: number;
  frameBody: string;
}

export interface FakeCounts {
  dropped: number;
  duplicated: number;
  misrouted: number;
  disconnected: number;
  failedPosts: number;
  replayed: number;
}

export class FakeSseServer {
  readonly counts: FakeCounts = {
    dropped: 0,
    duplicated: 0,
    misrouted: 0,
    disconnected: 0,
    failedPosts: 0,
    replayed: 0,
  };
  private readonly server: http.Server;
  private readonly subs = new Set<FakeSub>();
  private readonly logs = new Map<string, LoggedEvent[]>();
  private readonly sockets = new Set<net.Socket>();
  private readonly disconnectedOnce = new Set<string>();
  port = 0;

  constructor(
    private readonly trackIds: string[],
    private readonly faults: FakeFaults = {},
  ) {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private eol(): string {
    return this.faults.crlf ? '\r\n' : '\n';
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const m = /^\/api\/tracks\/([^/]+)\/(events|comments)$/.exec(req.url ?? '');
    const auth = /^Bearer user-(\d+)$/.exec(req.headers.authorization ?? '');
    if (!auth) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"error":{"code":"unauthorized","message":"no token"}}');
      return;
    }
    const track = m ? decodeURIComponent(m[1]!) : '';
    if (!m || !this.trackIds.includes(track)) {
      res.writeHead(404).end();
      return;
    }
    const user = Number(auth[1]);
    if (m[2] === 'events' && req.method === 'GET') this.stream(req, res, track, user);
    else if (m[2] === 'comments' && req.method === 'POST') this.post(req, res, track);
    else res.writeHead(405).end();
  }

  private stream(req: http.IncomingMessage, res: http.ServerResponse, track: string, user: number) {
    const e = this.eol();
    const headers = {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    };
    let write: (s: string) => void;
    let end: () => void;
    if (this.faults.chunked === false) {
      // Identity body: bypass Node's chunked default by writing the head ourselves.
      const socket = res.socket!;
      const head =
        'HTTP/1.1 200 OK\r\n' +
        Object.entries(headers)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('') +
        'connection: close\r\n\r\n';
      socket.write(head);
      write = (s) => socket.write(s);
      end = () => socket.end();
    } else {
      res.writeHead(200, headers);
      res.flushHeaders();
      write = (s) => res.write(s);
      end = () => res.end();
    }
    const sub: FakeSub = {
      user,
      track,
      chain: Promise.resolve(),
      raw: write,
      end,
    };
    this.write(sub, `retry: 2000${e}${e}`);
    this.write(sub, `: hello${e}${e}`);
    this.write(
      sub,
      `event: connected${e}data: ${JSON.stringify(connectedData(track, 'c'))}${e}${e}`,
    );
    const lastId = req.headers['last-event-id'];
    if (typeof lastId === 'string') {
      for (const ev of this.logs.get(track) ?? []) {
        if (ev.seq > Number(lastId)) {
          this.counts.replayed++;
          this.send(sub, ev.frameBody);
        }
      }
    }
    this.subs.add(sub);
    res.on('close', () => this.subs.delete(sub));
  }

  private write(sub: FakeSub, s: string): void {
    sub.chain = sub.chain.then(() => sub.raw(s));
  }

  /** Writes a frame, in two pieces a millisecond apart when splitFrames is on. */
  private send(sub: FakeSub, frame: string): void {
    if (!this.faults.splitFrames) {
      this.write(sub, frame);
      return;
    }
    const cut = Math.max(1, Math.floor(frame.length / 2) - 3);
    sub.chain = sub.chain
      .then(() => sub.raw(frame.slice(0, cut)))
      .then(() => new Promise((r) => setTimeout(r, 1)))
      .then(() => sub.raw(frame.slice(cut)));
  }

  private post(req: http.IncomingMessage, res: http.ServerResponse, track: string): void {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      const content = (JSON.parse(body) as { content: string }).content;
      const n = Number(/^bench:[^:]+:(\d+):/.exec(content)?.[1] ?? -1);
      if (this.faults.failPost?.(n)) {
        this.counts.failedPosts++;
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"error":{"code":"internal","message":"injected"}}');
        return;
      }
      const log = this.logs.get(track) ?? [];
      this.logs.set(track, log);
      const seq = log.length + 1;
      const data = newCommentData({
        id: n,
        track_id: track,
        user: { id: 1, username: 'u' },
        content,
        timestamp: 0,
        parent_id: null,
        mentions: [],
        is_edited: false,
        last_edited_at: null,
        created_at: new Date().toISOString(),
      });
      const e = this.eol();
      const json = JSON.stringify(data);
      const frameBody = `id: ${seq}${e}event: new_comment${e}data: ${json}${e}${e}`;
      log.push({ seq, n, frameBody });
      for (const sub of this.subs) {
        if (sub.track !== track) {
          if (this.faults.misroute?.(sub.user, n)) {
            this.counts.misrouted++;
            // no id: line, so it does not disturb the stream's resume position
            this.write(sub, `event: new_comment${e}data: ${json}${e}${e}`);
          }
          continue;
        }
        if (this.faults.drop?.(sub.user, n)) {
          this.counts.dropped++;
          continue;
        }
        this.send(sub, frameBody);
        if (this.faults.duplicate?.(sub.user, n)) {
          this.counts.duplicated++;
          this.write(sub, frameBody);
        }
        const key = `${sub.user}/${sub.track}`;
        if (this.faults.disconnectAfter?.(sub.user, n) && !this.disconnectedOnce.has(key)) {
          this.disconnectedOnce.add(key);
          this.counts.disconnected++;
          this.subs.delete(sub);
          sub.chain = sub.chain.then(() => sub.end());
        }
      }
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ comment: data.comment }));
    });
  }
}
