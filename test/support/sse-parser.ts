/** One dispatched event as the stream carried it: `data` is the raw text (lines joined by LF). */
export interface SseBlock {
  /** The `id:` field of this event's own block; undefined when the block had none. */
  id: string | undefined;
  /** The `event:` field (`message` when absent, as in the spec). */
  event: string;
  data: string;
}

export interface SseSink {
  onEvent?(block: SseBlock): void;
  /** A comment line (`: ping`), without the colon and one leading space. */
  onComment?(text: string): void;
  /** A `retry:` field made only of digits (the spec ignores any other). */
  onRetry?(ms: number): void;
}

/**
 * The tests' one reader of the SSE wire format (WHATWG "event stream interpretation"): fed text
 * in chunks cut anywhere, it calls the sink for each event, comment and retry hint.
 */
export class SseParser {
  /** The id a browser would send on reconnect: the last `id:` field of a completed block. */
  lastEventId: string | undefined;
  private pending = '';
  private block: { id?: string; event?: string; data: string[] } = { data: [] };

  constructor(private readonly sink: SseSink) {}

  push(chunk: string): void {
    this.pending += chunk;
    // Lines end with CRLF, LF or CR; a trailing CR may be half of a CRLF.
    const eol = /\r\n|\n|\r/g;
    let start = 0;
    for (let m = eol.exec(this.pending); m; m = eol.exec(this.pending)) {
      if (m[0] === '\r' && m.index === this.pending.length - 1) break;
      this.line(this.pending.slice(start, m.index));
      start = m.index + m[0].length;
    }
    this.pending = this.pending.slice(start);
  }

  private line(line: string): void {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) {
      this.sink.onComment?.(line.slice(1).replace(/^ /, ''));
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
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.sink.onRetry?.(Number(value));
        break;
      default:
        break; // ignored, as the spec says
    }
  }

  private dispatch(): void {
    const block = this.block;
    this.block = { data: [] };
    if (block.id !== undefined) this.lastEventId = block.id;
    if (block.data.length === 0) return; // the spec dispatches nothing without data
    this.sink.onEvent?.({
      id: block.id,
      event: block.event ?? 'message',
      data: block.data.join('\n'),
    });
  }
}
