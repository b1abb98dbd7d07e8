import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

type FreeParser = (parser: unknown, req: IncomingMessage, socket: Socket) => void;

/**
 * Node's own parser release, the one its HTTP server runs for an upgrade. `_http_common` is
 * one of Node's legacy public modules; if a future Node drops it, takeover is skipped.
 */
const freeParser: FreeParser | undefined = (() => {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fn = (require('_http_common') as { freeParser?: unknown }).freeParser;
    return typeof fn === 'function' ? (fn as FreeParser) : undefined;
  } catch {
    return undefined;
  }
})();

/**
 * The listeners Node's HTTP server puts on each connection (lib/_http_server.js), by name.
 * The server binds most of them per connection; releasing them is what an upgrade does.
 */
const SERVER_LISTENERS: Record<string, string> = {
  data: 'bound socketOnData',
  end: 'bound socketOnEnd',
  close: 'bound socketOnClose',
  drain: 'bound socketOnDrain',
  error: 'socketOnError',
  timeout: 'socketOnTimeout',
  resume: 'onSocketResume',
  pause: 'onSocketPause',
};

type HttpSocket = Socket & { parser?: unknown; _httpMessage?: unknown };

/**
 * Takes a stream's connection over from Node's HTTP server once the response head is on the
 * wire, as Node does for an upgrade: the server's per-connection listeners and its HTTP parser
 * are released, and the request and response objects become garbage. An idle stream then
 * keeps only its socket — about 2 KB less heap than a live HTTP exchange, plus the parser's
 * native memory. From here on the caller owns the socket: it writes the body bytes itself
 * and ends the stream with `socket.end()` (the body is delimited by the connection's close).
 *
 * Returns false, touching nothing, when the connection is not in the expected state (a
 * chunked body, a request still being read, another Node version's internals): the caller
 * then keeps using `res` as usual.
 */
export function takeOverSocket(req: IncomingMessage, res: ServerResponse, socket: Socket): boolean {
  const s = socket as HttpSocket;
  const chunked = (res as unknown as { chunkedEncoding?: boolean }).chunkedEncoding !== false;
  if (!freeParser || !s.parser || s._httpMessage !== res || !res.headersSent || chunked)
    return false;
  // Node completes a bodiless request right after the 'request' event: callers get here after
  // an await. A request whose body is still coming is left alone.
  if (!req.complete) return false;
  const found: [string, (...args: unknown[]) => void][] = [];
  for (const [event, name] of Object.entries(SERVER_LISTENERS)) {
    const fn = socket.listeners(event).find((l) => l.name === name);
    if (!fn) return false;
    found.push([event, fn as (...args: unknown[]) => void]);
  }
  for (const [event, fn] of found) socket.removeListener(event, fn);
  // The response lets go of the socket (its close listener, socket._httpMessage) ...
  res.detachSocket(socket);
  // ... and the parser goes back to Node's pool, out of the server's connection list.
  freeParser(s.parser, req, socket);
  // Errors now surface as 'close' (which the caller listens to); without a listener an
  // 'error' would be thrown. A client that half-closes has gone: close our side too.
  socket.on('error', noop);
  socket.on('end', () => socket.destroy());
  // For the HTTP layer this response is over: whoever tracks responses in flight lets go.
  res.emit('close');
  return true;
}

const noop = (): void => undefined;
