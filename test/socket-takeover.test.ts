/**
 * takeOverSocket (src/streams/socket-takeover.ts) on a real node:http server: once a stream's
 * head is out, the HTTP server lets go of the connection (listeners, parser, response) and
 * the bytes the hub writes straight to the socket still reach the client, up to the end.
 */
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { takeOverSocket } from '../src/streams/socket-takeover';
import { useHandlerServer } from './support/handler-server';

const srv = useHandlerServer();

/** GETs `path` and collects the body until the server ends it. */
function fetchBody(path: string, init: { method?: string; body?: string } = {}) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(`${srv.base}${path}`, { method: init.method ?? 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (init.body !== undefined) req.write(init.body);
    req.end();
  });
}

/**
 * Answers as the hub does — a body delimited by the connection's close — writes `first`, and
 * takes the connection over after an await (by then Node has completed a bodiless request).
 */
async function streamThenTakeOver(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  first: string,
): Promise<boolean> {
  res.useChunkedEncodingByDefault = false;
  res.shouldKeepAlive = false;
  res.writeHead(200, { 'Content-Type': 'text/event-stream' });
  res.write(first);
  await Promise.resolve();
  return takeOverSocket(req, res, req.socket);
}

test('after the head, the server lets go and the socket carries the rest of the body', async () => {
  const seen: {
    taken: boolean;
    parser: unknown;
    serverListeners: number;
    resClosed: boolean;
    owner: unknown;
  }[] = [];
  srv.handler = async (req, res) => {
    const socket = req.socket as Socket & { parser?: unknown; _httpMessage?: unknown };
    let resClosed = false;
    res.on('close', () => (resClosed = true));
    const taken = await streamThenTakeOver(req, res, 'retry: 1000\n\n');
    seen.push({
      taken,
      parser: socket.parser,
      serverListeners: socket.listenerCount('data') + socket.listenerCount('drain'),
      resClosed,
      owner: socket._httpMessage,
    });
    socket.write('data: one\n\n');
    setImmediate(() => {
      socket.write('data: two\n\n');
      socket.end();
    });
  };
  const got = await fetchBody('/stream');
  expect(got.status).toBe(200);
  expect(got.body).toBe('retry: 1000\n\ndata: one\n\ndata: two\n\n');
  expect(seen).toEqual([
    { taken: true, parser: null, serverListeners: 0, resClosed: true, owner: null },
  ]);
});

test('a request whose body is still being read is left to the HTTP server', async () => {
  const results: boolean[] = [];
  srv.handler = async (req, res) => {
    results.push(await streamThenTakeOver(req, res, 'x'));
    req.resume();
    req.on('end', () => res.end('y'));
  };
  const got = await fetchBody('/upload', { method: 'POST', body: 'z'.repeat(100_000) });
  expect(results).toEqual([false]);
  // Untouched: the response still ends through the HTTP layer.
  expect(got.body).toBe('xy');
});

test('a client that goes away closes the taken-over socket', async () => {
  let closed!: () => void;
  const socketClosed = new Promise<void>((resolve) => (closed = resolve));
  let taken = false;
  srv.handler = async (req, res) => {
    taken = await streamThenTakeOver(req, res, ': hi\n\n');
    req.socket.on('close', () => closed());
  };
  await new Promise<void>((resolve, reject) => {
    const req = http.get(`${srv.base}/stream`, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => undefined);
    req.on('close', () => undefined);
    setTimeout(() => reject(new Error('no first bytes')), 5000).unref();
  });
  await socketClosed;
  expect(taken).toBe(true);
});

test('a chunked response is left to the HTTP server', async () => {
  const results: boolean[] = [];
  srv.handler = async (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write('a');
    await Promise.resolve();
    results.push(takeOverSocket(req, res, req.socket));
    res.end('b');
  };
  const got = await fetchBody('/chunked');
  expect(results).toEqual([false]);
  expect(got.body).toBe('ab');
});

test('a client that half-closes its side gets the connection closed', async () => {
  srv.handler = async (req, res) => {
    expect(await streamThenTakeOver(req, res, ': hi\n\n')).toBe(true);
  };
  const { port } = srv.server.address() as AddressInfo;
  const received = await new Promise<string>((resolve, reject) => {
    let text = '';
    const client = net.connect(port, '127.0.0.1', () =>
      client.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n'),
    );
    client.setEncoding('utf8');
    client.on('data', (d: string) => {
      text += d;
      // Head and first bytes are in: stop sending (FIN) but keep reading.
      if (text.includes(': hi')) client.end();
    });
    client.on('error', reject);
    // Only the server's close ends a half-open connection.
    client.on('close', () => resolve(text));
  });
  expect(received).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  expect(received.endsWith(': hi\n\n')).toBe(true);
});
