/**
 * A minimal incremental parser for one HTTP/1.1 response carrying
 * `text/event-stream`: status line + headers, optional chunked transfer
 * coding, then SSE lines (WHATWG "event stream interpretation": CR, LF or
 * CRLF line ends, `:` comments, `id`/`event`/`data` fields). It works on
 * Buffers and decodes only the bytes of fields it keeps, so a delivery costs
 * a few native indexOf calls and one small string.
 */

export interface SseFrame {
  /** The last event id seen on this stream (SSE semantics: it persists). */
  id: string | undefined;
  /** The `event:` name, `message` when absent. */
  event: string;
  data: string;
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
  private eventName = '';
  private dataLines: string[] = [];

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
    const name = buf.toString('latin1', start, colon);
    let valueStart = colon + 1;
    if (valueStart < end && buf[valueStart] === SPACE) valueStart++;
    if (valueStart > end) valueStart = end;
    switch (name) {
      case 'data':
        this.dataLines.push(buf.toString('utf8', valueStart, end));
        break;
      case 'event':
        this.eventName = buf.toString('utf8', valueStart, end);
        break;
      case 'id': {
        const id = buf.toString('utf8', valueStart, end);
        if (!id.includes('\0')) this.lastId = id;
        break;
      }
      default: // retry and unknown fields: not needed
    }
  }

  private dispatch(): void {
    if (this.dataLines.length === 0) {
      this.eventName = '';
      return;
    }
    const frame: SseFrame = {
      id: this.lastId,
      event: this.eventName || 'message',
      data: this.dataLines.length === 1 ? this.dataLines[0]! : this.dataLines.join('\n'),
    };
    this.eventName = '';
    this.dataLines = [];
    this.onFrame(frame);
  }
}
