/**
 * A minimal incremental parser for one HTTP/1.1 response carrying
 * `text/event-stream`: status line + headers, optional chunked transfer
 * coding, then SSE lines (WHATWG "event stream interpretation": CR, LF or
 * CRLF line ends, `:` comments, `id`/`event`/`data` fields). It works on
 * Buffers and leaves a frame's data as bytes: the bench looks for its marker
 * with a native search in the read buffer, so a delivery decodes no text
 * but its id (and its event name when that changes).
 */

/**
 * One dispatched event. The parser hands the same object to every onFrame call: read it
 * during the call, copy what must outlive it (see `copyFrame`).
 */
export interface SseFrame {
  /** The last event id seen on this stream (SSE semantics: it persists). */
  readonly id: string | undefined;
  /** The `event:` name, `message` when absent. */
  readonly event: string;
  /** The data lines joined by LF, decoded as UTF-8 when read. */
  readonly data: string;
  /** The data's bytes are `dataBuf[dataStart, dataEnd)`; valid only during the call. */
  readonly dataBuf: Buffer;
  readonly dataStart: number;
  readonly dataEnd: number;
}

/** A frame's fields as plain values, safe to keep after the onFrame call. */
export interface FrameCopy {
  id: string | undefined;
  event: string;
  data: string;
}

export function copyFrame(frame: SseFrame): FrameCopy {
  return { id: frame.id, event: frame.event, data: frame.data };
}

/** Where `needle` first occurs within `buf[start, end)`, or -1 (a native search, no copy). */
export function indexOfWithin(buf: Buffer, needle: Buffer, start: number, end: number): number {
  const i = buf.indexOf(needle, start);
  return i >= 0 && i + needle.length <= end ? i : -1;
}

export interface ResponseHead {
  status: number;
  headers: Record<string, string>;
}

const LF = 10;
const CR = 13;
const COLON = 58;
const SPACE = 32;
const HEAD_END = Buffer.from('\r\n\r\n');
const EMPTY: Buffer = Buffer.alloc(0);
const LF_BYTES = Buffer.from('\n');
const DATA = Buffer.from('data');
const EVENT = Buffer.from('event');
const ID = Buffer.from('id');

/** `buf[start, end)` holds exactly the bytes of `word`. */
function bytesAre(buf: Buffer, start: number, end: number, word: Buffer): boolean {
  if (end - start !== word.length) return false;
  for (let i = 0; i < word.length; i++) if (buf[start + i] !== word[i]) return false;
  return true;
}

/** The one frame object a parser hands out, rewritten for each event. */
class MutableFrame implements SseFrame {
  id: string | undefined = undefined;
  event = 'message';
  dataBuf: Buffer = EMPTY;
  dataStart = 0;
  dataEnd = 0;
  get data(): string {
    return this.dataBuf.toString('utf8', this.dataStart, this.dataEnd);
  }
}

/** Bytes of a non-200 body kept for the error message. */
const ERROR_BODY_LIMIT = 1024;

export class SseResponseParser {
  head: ResponseHead | undefined;
  /** Body text of a non-200 response (first ERROR_BODY_LIMIT bytes). */
  errorBody = '';
  /** Set when the byte stream broke the HTTP framing; parsing stops. */
  protocolError: string | undefined;
  /**
   * The response body is complete (final chunk, or Content-Length reached)
   * while the connection may stay open for keep-alive: the stream is over.
   */
  ended = false;

  private headBuf: Buffer | undefined;
  private chunked = false;
  /** Chunked decoding: bytes of chunk data still to read, or -1 while reading a size line. */
  private chunkLeft = -1;
  /** Chunked decoding: CRLF bytes still to skip after a chunk's data. */
  private chunkCrlfLeft = 0;
  private chunkSizeLine = '';
  /** Body bytes still expected when the response has a Content-Length. */
  private lengthLeft = -1;

  private lineRest: Buffer | undefined;
  private skipLeadingLf = false;
  private lastId: string | undefined;
  /** The pending event name's bytes and text (the text is reused while the bytes repeat). */
  private eventBytes = EMPTY;
  private eventText = '';
  private hasEventName = false;
  /**
   * The pending data: `dataBuf[dataStart, dataEnd)` when `dataLines` > 0. It views the bytes
   * being parsed until the end of a push, then it is copied (the caller reuses that memory).
   */
  private dataLines = 0;
  private dataBuf = EMPTY;
  private dataStart = 0;
  private dataEnd = 0;
  private dataOwned = false;
  private readonly frame = new MutableFrame();

  constructor(
    private readonly onHead: (head: ResponseHead) => void,
    private readonly onFrame: (frame: SseFrame) => void,
  ) {}

  /** Feeds raw socket bytes. Nothing of `chunk` is kept, so the caller may reuse its memory. */
  push(chunk: Buffer): void {
    if (this.protocolError || this.ended) return;
    if (!this.head) {
      const buf = this.headBuf ? Buffer.concat([this.headBuf, chunk]) : chunk;
      const end = buf.indexOf(HEAD_END);
      if (end < 0) {
        if (buf.length > 64 * 1024) this.protocolError = 'response head too large';
        this.headBuf = Buffer.from(buf); // a copy: the caller may reuse `chunk`'s memory
        return;
      }
      this.headBuf = undefined;
      this.parseHead(buf.toString('latin1', 0, end));
      if (this.protocolError) return;
      chunk = buf.subarray(end + HEAD_END.length);
      if (chunk.length === 0) return;
    }
    if (this.chunked) {
      this.dechunk(chunk);
    } else if (this.lengthLeft >= 0) {
      const n = Math.min(this.lengthLeft, chunk.length);
      this.lengthLeft -= n;
      this.body(n === chunk.length ? chunk : chunk.subarray(0, n));
      if (this.lengthLeft === 0) this.ended = true;
    } else {
      this.body(chunk);
    }
  }

  private parseHead(text: string): void {
    const lines = text.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (!m) {
      this.protocolError = `bad status line: ${JSON.stringify(lines[0])}`;
      return;
    }
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    this.chunked = /(^|,)\s*chunked\s*$/i.test(headers['transfer-encoding'] ?? '');
    if (!this.chunked && headers['content-length'] !== undefined) {
      this.lengthLeft = Number(headers['content-length']);
      if (this.lengthLeft === 0) this.ended = true;
    }
    this.head = { status: Number(m[1]), headers };
    this.onHead(this.head);
  }

  private body(bytes: Buffer): void {
    if (this.head!.status !== 200) {
      if (this.errorBody.length < ERROR_BODY_LIMIT) {
        this.errorBody += bytes.toString('utf8', 0, ERROR_BODY_LIMIT - this.errorBody.length);
      }
      return;
    }
    this.lines(bytes);
  }

  private dechunk(buf: Buffer): void {
    let pos = 0;
    while (pos < buf.length && !this.ended) {
      if (this.chunkCrlfLeft > 0) {
        const n = Math.min(this.chunkCrlfLeft, buf.length - pos);
        pos += n;
        this.chunkCrlfLeft -= n;
        continue;
      }
      if (this.chunkLeft < 0) {
        const lf = buf.indexOf(LF, pos);
        if (lf < 0) {
          this.chunkSizeLine += buf.toString('latin1', pos);
          return;
        }
        this.chunkSizeLine += buf.toString('latin1', pos, lf);
        pos = lf + 1;
        const size = parseInt(this.chunkSizeLine, 16); // chunk extensions after ';' are ignored
        this.chunkSizeLine = '';
        if (!Number.isFinite(size) || size < 0) {
          this.protocolError = 'bad chunk size';
          return;
        }
        if (size === 0) {
          this.ended = true; // the response is over; trailers are not read
          return;
        }
        this.chunkLeft = size;
        continue;
      }
      const n = Math.min(this.chunkLeft, buf.length - pos);
      this.body(buf.subarray(pos, pos + n));
      pos += n;
      this.chunkLeft -= n;
      if (this.chunkLeft === 0) {
        this.chunkLeft = -1;
        this.chunkCrlfLeft = 2;
      }
    }
  }

  private lines(chunk: Buffer): void {
    this.scanLines(chunk);
    if (this.dataLines > 0 && !this.dataOwned) {
      // The frame continues in a later read: keep its data past this push.
      this.dataBuf = Buffer.from(this.dataBuf.subarray(this.dataStart, this.dataEnd));
      this.dataStart = 0;
      this.dataEnd = this.dataBuf.length;
      this.dataOwned = true;
    }
  }

  private scanLines(chunk: Buffer): void {
    let buf = chunk;
    if (this.lineRest) {
      buf = Buffer.concat([this.lineRest, chunk]);
      this.lineRest = undefined;
    }
    let pos = 0;
    if (this.skipLeadingLf) {
      this.skipLeadingLf = false;
      if (buf.length > 0 && buf[0] === LF) pos = 1;
    }
    // Servers end lines with LF; CR is looked up once and only again when passed.
    let nextCr = buf.indexOf(CR, pos);
    while (pos < buf.length) {
      let lf = buf.indexOf(LF, pos);
      if (nextCr >= 0 && nextCr < pos) nextCr = buf.indexOf(CR, pos);
      let eolLen = 1;
      if (nextCr >= 0 && (lf < 0 || nextCr < lf)) {
        if (nextCr + 1 === buf.length) {
          // A CR at the end: the line ends here; a following LF (next chunk) belongs to it.
          this.skipLeadingLf = true;
        } else if (buf[nextCr + 1] === LF) {
          eolLen = 2;
        }
        lf = nextCr;
      }
      if (lf < 0) {
        this.lineRest = Buffer.from(buf.subarray(pos)); // a copy, as above
        return;
      }
      this.line(buf, pos, lf);
      pos = lf + eolLen;
    }
  }

  private line(buf: Buffer, start: number, end: number): void {
    if (start === end) {
      this.dispatch();
      return;
    }
    if (buf[start] === COLON) return; // comment, e.g. ": ping"
    let colon = buf.indexOf(COLON, start);
    if (colon < 0 || colon > end) colon = end;
    let valueStart = colon + 1;
    if (valueStart < end && buf[valueStart] === SPACE) valueStart++;
    if (valueStart > end) valueStart = end;
    if (bytesAre(buf, start, colon, DATA)) {
      this.addData(buf, valueStart, end);
    } else if (bytesAre(buf, start, colon, EVENT)) {
      if (!bytesAre(buf, valueStart, end, this.eventBytes)) {
        this.eventBytes = Buffer.from(buf.subarray(valueStart, end));
        this.eventText = this.eventBytes.toString('utf8');
      }
      this.hasEventName = true;
    } else if (bytesAre(buf, start, colon, ID)) {
      const id = buf.toString('utf8', valueStart, end);
      if (!id.includes('\0')) this.lastId = id;
    } // retry and unknown fields: not needed
  }

  private addData(buf: Buffer, start: number, end: number): void {
    if (this.dataLines === 0) {
      this.dataBuf = buf;
      this.dataStart = start;
      this.dataEnd = end;
      this.dataOwned = false;
    } else {
      this.dataBuf = Buffer.concat([
        this.dataBuf.subarray(this.dataStart, this.dataEnd),
        LF_BYTES,
        buf.subarray(start, end),
      ]);
      this.dataStart = 0;
      this.dataEnd = this.dataBuf.length;
      this.dataOwned = true;
    }
    this.dataLines++;
  }

  private dispatch(): void {
    const event = this.hasEventName && this.eventText !== '' ? this.eventText : 'message';
    this.hasEventName = false;
    if (this.dataLines === 0) return;
    const frame = this.frame;
    frame.id = this.lastId;
    frame.event = event;
    frame.dataBuf = this.dataBuf;
    frame.dataStart = this.dataStart;
    frame.dataEnd = this.dataEnd;
    this.dataLines = 0;
    this.dataBuf = EMPTY;
    this.onFrame(frame);
  }
}
