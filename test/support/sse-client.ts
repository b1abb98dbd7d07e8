import http, { type IncomingHttpHeaders } from 'node:http';
import { SseParser, type SseBlock } from './sse-parser';
import type { Comment, StreamEventMap, StreamEventName } from '../../src/events/catalogue';

/** A comment as the contract's JSON shows it (section 3): the catalogue's `Comment`. */
export type CommentJson = Comment;

type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (
  i: infer I,
) => void
  ? I
  : never;

/** Every field that some event's `data` has besides `type` and `track_id` (section 5). */
type EventFields = UnionToIntersection<
  { [K in StreamEventName]: Omit<StreamEventMap[K], 'type' | 'track_id'> }[StreamEventName]
>;

/**
 * The `data` object of an event as parsed, whatever its event: the catalogue's fields, each
 * optional, for assertions on what arrived (including what should not have).
 */
export type SseData = Partial<EventFields> & {
  type?: string;
  track_id?: string | null;
  [key: string]: unknown;
};

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

  private readonly parser = new SseParser({
    onEvent: (block) => this.onEvent(block),
    onComment: (text) => this.items.push({ kind: 'comment', text, at: Date.now() }),
    onRetry: (ms) => this.items.push({ kind: 'retry', ms, at: Date.now() }),
  });
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

  /** The id a browser would send on reconnect: the last `id:` field seen. */
  get lastEventId(): string | undefined {
    return this.parser.lastEventId;
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
    this.parser.push(chunk);
    this.notify();
  }

  private onEvent({ id, event, data: rawData }: SseBlock): void {
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
      event: { id, event, data, rawData, parseError, at: Date.now() },
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
