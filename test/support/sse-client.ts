import http, { type IncomingHttpHeaders } from 'node:http';

/** A comment as the contract's JSON shows it (section 3). */
export interface CommentJson {
  id: number;
  track_id: string;
  user: { id: number; username: string };
  content: string;
  timestamp: number;
  parent_id: number | null;
  mentions: { id: number; username: string }[];
  is_edited: boolean;
  last_edited_at: string | null;
  created_at: string;
}

/** The `data` object of an event, with the contract's fields (section 5) typed. */
export interface SseData {
  type?: string;
  track_id?: string | null;
  message?: string;
  connection_id?: string;
  comment?: CommentJson;
  comment_id?: number;
  content?: string;
  timestamp?: number;
  is_edited?: boolean;
  last_edited_at?: string;
  user_id?: number;
  username?: string;
  is_typing?: boolean;
  expires_in_ms?: number;
  from_user?: { id: number; username: string };
  reason?: string;
  [key: string]: unknown;
}

export interface SseEvent {
  /** The `id:` field of this event's own block; undefined when the block had none. */
  id: string | undefined;
  /** The `event:` field (`message` when absent, as in the spec). */
  event: string;
  /** `data` parsed as JSON; `{}` with `parseError` set when it was not JSON. */
  data: SseData;
  rawData: string;
  parseError?: string;
  /** Date.now() when the block was complete. */
  at: number;
}

/** Everything the stream carried, in arrival order. */
export type SseItem =
  | { kind: 'event'; event: SseEvent }
  | { kind: 'comment'; text: string; at: number }
  | { kind: 'retry'; ms: number; at: number };

export interface SseOpenOptions {
  /** A user JWT, sent as `Authorization: Bearer`. */
  token?: string;
  /** Sent as the `Last-Event-ID` header. */
  lastEventId?: string;
  headers?: Record<string, string>;
  /** How long to wait for the response headers. */
  timeoutMs?: number;
}

type Waiter = { check: () => boolean; fail: (why: string) => void };

/**
 * A small SSE client over node:http that records every frame (events with
 * their own `id:`, comments like `: ping`, `retry:`), for exact assertions.
 * A non-200 answer is kept too (`status`, `bodyText`, `bodyJson`).
 */
export class SseClient {
  readonly items: SseItem[] = [];
  /** The text of a non-200 response (or of whatever the stream sent, for diagnostics). */
  bodyText = '';
  /** Set once the response ended or the connection closed/failed. */
  ended = false;
  endReason: string | undefined;
  /** The id a browser would send on reconnect: the last `id:` field seen. */
  lastEventId: string | undefined;

  private pending = '';
  private block: { id?: string; event?: string; data: string[]; hasData: boolean } = {
    data: [],
    hasData: false,
  };
  private waiters = new Set<Waiter>();
  private readonly closedPromise: Promise<void>;
  private resolveClosed!: () => void;

  private constructor(
    readonly url: string,
    private readonly req: http.ClientRequest,
    readonly res: http.IncomingMessage,
  ) {
    this.closedPromise = new Promise((resolve) => (this.resolveClosed = resolve));
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => this.onText(chunk));
    res.on('end', () => this.finish('end'));
    res.on('close', () => this.finish('close'));
    res.on('error', (err) => this.finish(`error: ${err.message}`));
    req.on('error', (err) => this.finish(`request error: ${err.message}`));
  }

  /** Opens `url` and resolves once the response headers arrived (any status). */
  static open(url: string, opts: SseOpenOptions = {}): Promise<SseClient> {
    const headers: Record<string, string> = { Accept: 'text/event-stream', ...opts.headers };
    if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
    if (opts.lastEventId !== undefined) headers['Last-Event-ID'] = opts.lastEventId;
    return new Promise((resolve, reject) => {
      const req = http.get(url, { headers, agent: false }, (res) => {
        clearTimeout(timer);
        resolve(new SseClient(url, req, res));
      });
      const timer = setTimeout(() => {
        req.destroy();
        reject(new Error(`no response headers from ${url} within ${opts.timeoutMs ?? 10000} ms`));
      }, opts.timeoutMs ?? 10000);
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  get status(): number {
    return this.res.statusCode ?? 0;
  }

  get headers(): IncomingHttpHeaders {
    return this.res.headers;
  }

  /** The body of a non-200 answer parsed as JSON (waits for it to end). */
  async bodyJson(timeoutMs = 5000): Promise<unknown> {
    await this.waitForClose(timeoutMs);
    return JSON.parse(this.bodyText);
  }

  /** Every event so far, optionally only those named `type`. */
  events(type?: string): SseEvent[] {
    const out: SseEvent[] = [];
    for (const item of this.items) {
      if (item.kind === 'event' && (type === undefined || item.event.event === type)) {
        out.push(item.event);
      }
    }
    return out;
  }

  /** Events that carry an `id:` (the stored, resumable ones). */
  storedEvents(): SseEvent[] {
    return this.events().filter((e) => e.id !== undefined);
  }

  comments(): { text: string; at: number }[] {
    return this.items.flatMap((i) => (i.kind === 'comment' ? [{ text: i.text, at: i.at }] : []));
  }

  /** Resolves with the first recorded event (past or future) matching `pred`. */
  async waitForEvent(pred: (e: SseEvent) => boolean, timeoutMs = 10000): Promise<SseEvent> {
    const [first] = await this.waitForEvents(pred, 1, timeoutMs);
    return first!;
  }

  /** Resolves with the first `count` recorded events matching `pred` once there are that many. */
  async waitForEvents(
    pred: (e: SseEvent) => boolean,
    count: number,
    timeoutMs = 10000,
  ): Promise<SseEvent[]> {
    let found: SseEvent[] = [];
    await this.waitUntil(
      () => {
        found = this.events().filter(pred);
        return found.length >= count;
      },
      `${count} matching event(s)`,
      timeoutMs,
    );
    return found.slice(0, count);
  }

  /** Resolves once `count` comment lines matching `pred` were received. */
  async waitForComments(
    pred: (text: string) => boolean,
    count: number,
    timeoutMs = 10000,
  ): Promise<{ text: string; at: number }[]> {
    let found: { text: string; at: number }[] = [];
    await this.waitUntil(
      () => {
        found = this.comments().filter((c) => pred(c.text));
        return found.length >= count;
      },
      `${count} comment line(s)`,
      timeoutMs,
    );
    return found.slice(0, count);
  }

  /** Resolves once the server ended the response or the connection dropped. */
  async waitForClose(timeoutMs = 10000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.url}: still open after ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.closedPromise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the connection from the client side. */
  close(): void {
    this.req.destroy();
    this.res.destroy();
    this.finish('closed by client');
  }

  /** A one-line summary of what arrived, for failure messages. */
  describe(): string {
    const parts = this.items.map((i) =>
      i.kind === 'event'
        ? `${i.event.event}${i.event.id !== undefined ? '#' + i.event.id : ''}`
        : i.kind === 'retry'
          ? `retry:${i.ms}`
          : `:${i.text}`,
    );
    const compact = parts.filter((p) => p !== ':ping');
    return `${this.url} [status ${this.status}${this.ended ? `, ended (${this.endReason})` : ''}] ${compact.join(' ')}`;
  }

  private waitUntil(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (check()) return Promise.resolve();
    if (this.ended) {
      return Promise.reject(
        new Error(`stream ended (${this.endReason}) before ${what}: ${this.describe()}`),
      );
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${this.describe()}`),
        );
      }, timeoutMs);
      const waiter: Waiter = {
        check: () => {
          if (!check()) return false;
          clearTimeout(timer);
          resolve();
          return true;
        },
        fail: (why) => {
          clearTimeout(timer);
          reject(new Error(`stream ${why} while waiting for ${what}: ${this.describe()}`));
        },
      };
      this.waiters.add(waiter);
    });
  }

  private notify(): void {
    for (const w of [...this.waiters]) if (w.check()) this.waiters.delete(w);
  }

  private finish(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.endReason = reason;
    this.resolveClosed();
    // Nothing more can arrive: waiters still unsatisfied fail now instead of at their timeout.
    for (const w of [...this.waiters]) {
      this.waiters.delete(w);
      if (!w.check()) w.fail(reason === 'closed by client' ? 'was closed' : `ended (${reason})`);
    }
  }

  private onText(chunk: string): void {
    if (this.status !== 200) {
      this.bodyText += chunk;
      return;
    }
    this.pending += chunk;
    // Lines end with CRLF, LF or CR (the spec); a trailing CR may be half of a CRLF.
    for (;;) {
      const m = /\r\n|\n|\r/.exec(this.pending);
      if (!m) break;
      if (m[0] === '\r' && m.index === this.pending.length - 1) break;
      const line = this.pending.slice(0, m.index);
      this.pending = this.pending.slice(m.index + m[0].length);
      this.onLine(line);
    }
    this.notify();
  }

  private onLine(line: string): void {
    const now = Date.now();
    if (line === '') {
      this.dispatch(now);
      return;
    }
    if (line.startsWith(':')) {
      this.items.push({ kind: 'comment', text: line.slice(1).replace(/^ /, ''), at: now });
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    switch (field) {
      case 'id':
        this.block.id = value;
        break;
      case 'event':
        this.block.event = value;
        break;
      case 'data':
        this.block.data.push(value);
        this.block.hasData = true;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.items.push({ kind: 'retry', ms: Number(value), at: now });
        break;
      default:
        break; // ignored, as the spec says
    }
  }

  private dispatch(now: number): void {
    const block = this.block;
    this.block = { data: [], hasData: false };
    if (block.id !== undefined) this.lastEventId = block.id;
    if (!block.hasData) return; // the spec dispatches nothing without data
    const rawData = block.data.join('\n');
    let data: SseData = {};
    let parseError: string | undefined;
    try {
      const parsed: unknown = JSON.parse(rawData);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        data = parsed as SseData;
      } else {
        parseError = 'data is not a JSON object';
      }
    } catch (err) {
      parseError = (err as Error).message;
    }
    this.items.push({
      kind: 'event',
      event: { id: block.id, event: block.event ?? 'message', data, rawData, parseError, at: now },
    });
  }
}

/** Opens an SSE stream: `openSse(url, { token })`. */
export const openSse = (url: string, opts: SseOpenOptions = {}): Promise<SseClient> =>
  SseClient.open(url, opts);

/**
 * Reconnects as a browser would after `previous` dropped: to `url` (any
 * replica) with `previous.lastEventId` in the `Last-Event-ID` header, or in
 * `?last_event_id=` when `via` is 'query'.
 */
export function resumeSse(
  previous: SseClient,
  url: string,
  opts: SseOpenOptions & { via?: 'header' | 'query' } = {},
): Promise<SseClient> {
  const lastEventId = previous.lastEventId;
  if (lastEventId === undefined) throw new Error(`${previous.url} saw no event id to resume from`);
  return resumeFromId(url, lastEventId, opts);
}

/** Opens `url` resuming after `lastEventId`, in the header (default) or the query string. */
export function resumeFromId(
  url: string,
  lastEventId: string,
  opts: SseOpenOptions & { via?: 'header' | 'query' } = {},
): Promise<SseClient> {
  const { via = 'header', ...rest } = opts;
  if (via === 'header') return SseClient.open(url, { ...rest, lastEventId });
  const u = new URL(url);
  u.searchParams.set('last_event_id', lastEventId);
  return SseClient.open(u.toString(), rest);
}

/** The ids of stored events as numbers, asserting each is a decimal integer. */
export function numericIds(events: SseEvent[]): number[] {
  return events.map((e) => {
    if (e.id === undefined || !/^\d+$/.test(e.id)) {
      throw new Error(`event ${e.event} has a non-numeric id ${String(e.id)}`);
    }
    return Number(e.id);
  });
}
