import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { connectedData } from '../events/builders';
import { errorBody } from '../events/error-body';
import type { StreamKind } from './channel';
import { frameText, retryText } from './frames';
import { takeOverSocket } from './socket-takeover';

/**
 * The HTTP side of a stream: its response head, HEAD, refusals and the hand-over of the
 * connection to the hub. The only stream module that touches Node's HTTP internals.
 */

export type ExtraHeaders = Readonly<Record<string, string | string[]>>;

/** Stands in for a stream's sent response head (see releaseHead). */
const SENT_HEAD = 'HTTP/1.1 200 OK\r\n\r\n';

/**
 * Node keeps a response's head text on `res._header` for the response's life: for a stream
 * with security headers ~0.9 KB of the ~6 KB a stream costs. Once the head is on the socket
 * (the first write sends it) Node only tests `_header` for truthiness (headersSent, end), so
 * a shared constant replaces it.
 */
export function releaseHead(res: ServerResponse): void {
  const out = res as unknown as { _header?: unknown; _headerSent?: boolean };
  if (out._headerSent === true && typeof out._header === 'string') out._header = SENT_HEAD;
}

/** A stream that is not opened: a JSON error (contract section 4) with `Retry-After`. */
export function refuse(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  retryAfterS: number,
  headers: ExtraHeaders = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = JSON.stringify(errorBody(code, message));
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Retry-After': String(retryAfterS),
    'Cache-Control': 'no-store',
  });
  res.end(body);
}

function streamHead(headers: ExtraHeaders | undefined): Record<string, string | string[]> {
  return {
    ...headers,
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache',
    'X-Accel-Buffering': 'no',
  };
}

/**
 * HEAD: the stream's headers and no body. Events are written to the socket, past Node's HEAD
 * handling, so a HEAD request must never join.
 */
export function answerHead(res: ServerResponse, headers: ExtraHeaders | undefined): void {
  res.writeHead(200, streamHead(headers));
  res.end();
}

/** The `connected` event (no id: not stored, not resumable). */
export function connectedFrame(kind: StreamKind, trackId: string | null): string {
  const connected = connectedData(kind === 'track' ? trackId : null, randomUUID());
  return frameText(null, 'connected', JSON.stringify(connected));
}

/**
 * Sends the stream's head with `retry:` and `first` (one packet), then hands the connection to
 * the caller: from here it writes the body to `socket` itself. The body is identity-encoded
 * and delimited by the connection's close, so each later event is a plain socket.write of a
 * shared Buffer (no chunk framing per subscriber). Where Node's internals are not as expected
 * the response stays attached and only its head text is dropped.
 */
export function startStream(
  req: IncomingMessage,
  res: ServerResponse,
  socket: Socket,
  headers: ExtraHeaders | undefined,
  retryMs: number,
  first: string,
): void {
  res.useChunkedEncodingByDefault = false;
  res.shouldKeepAlive = false;
  res.writeHead(200, streamHead(headers));
  res.write(retryText(retryMs) + first);
  if (!takeOverSocket(req, res, socket)) releaseHead(res);
}
