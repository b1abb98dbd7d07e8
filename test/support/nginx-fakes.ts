import http from 'node:http';
import net from 'node:net';
import { startNginx, type RunningNginx } from '../../harness/nginx';

/*
 * What the nginx tests share: reading the rendered config, plain requests, and stand-in
 * replicas (test/nginx-config.test.ts, test/nginx-tls.test.ts).
 */

/** The SSE location: a regex location for both stream paths, spelled exactly. */
export const SSE_LOCATION = 'location ~ "^/api/(?:tracks/[A-Za-z0-9._~:-]{1,128}|me)/events$" {';

/** The text of the `{ ... }` block that starts at `opening` (a line ending in '{'). */
export function block(config: string, opening: string): string {
  const start = config.indexOf(opening);
  if (start < 0) throw new Error(`no block ${opening}`);
  let depth = 0;
  for (let i = start + opening.length - 1; i < config.length; i++) {
    if (config[i] === '{') depth++;
    if (config[i] === '}' && --depth === 0) return config.slice(start, i + 1);
  }
  throw new Error(`unterminated block ${opening}`);
}

/** The directives of a config, comments removed (comments mention what must not be there). */
export const withoutComments = (config: string): string => config.replace(/#[^\n]*/g, '');

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on its own connection (no agent), so nothing lingers after the test. */
export function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: opts.method ?? 'GET', headers: opts.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

const FLOOD_BYTES = 64 * 1024 * 1024;

/**
 * A stand-in replica: an SSE stream that sends `connected`, then holds the
 * response open until the test releases it; JSON endpoints; counters.
 */
export class FakeReplica {
  readonly server: http.Server;
  port = 0;
  requests: {
    method: string;
    url: string;
    headers: http.IncomingHttpHeaders;
    bodyBytes: number;
  }[] = [];
  /** Streams the replica holds open until endStreams(). */
  readonly openStreams = new Set<http.ServerResponse>();
  streamsEnded = 0;

  constructor() {
    this.server = http.createServer((req, res) => {
      let bodyBytes = 0;
      req.on('data', (c: Buffer) => (bodyBytes += c.length));
      req.on('end', () => {
        this.requests.push({ method: req.method!, url: req.url!, headers: req.headers, bodyBytes });
        if (req.url === '/api/tracks/flood/events') return void this.flood(res);
        if (/^\/api\/(tracks\/t1|me)\/events/.test(req.url!)) return this.stream(req, res);
        res.setHeader('Content-Type', 'application/json');
        if (req.method === 'POST') {
          res.statusCode = 201;
          res.end(JSON.stringify({ comment: { id: this.requests.length } }));
        } else {
          // Large enough that gzip would apply to it (gzip_min_length 1024).
          res.end(JSON.stringify({ comments: [], padding: 'x'.repeat(4000), next_cursor: null }));
        }
      });
    });
  }

  private stream(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      // The real app sends it on every stream; the track stream here goes
      // without, so the test shows that nginx's own config does not buffer.
      ...(req.url!.startsWith('/api/me/') ? { 'X-Accel-Buffering': 'no' } : {}),
    });
    res.write('retry: 2000\n\nevent: connected\ndata: {"type":"connected","track_id":"t1"}\n\n');
    this.openStreams.add(res);
    res.on('close', () => this.openStreams.delete(res));
  }

  /** Bytes the flood stream got written (accepted by the socket to nginx). */
  floodWritten = 0;
  floodDone = false;

  /** Writes events as fast as the connection to nginx takes them, honouring backpressure. */
  private async flood(res: http.ServerResponse): Promise<void> {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    this.openStreams.add(res);
    res.on('close', () => this.openStreams.delete(res));
    const event = Buffer.from(`event: bulk\ndata: ${'x'.repeat(64 * 1024 - 20)}\n\n`);
    while (this.floodWritten < FLOOD_BYTES && !res.destroyed) {
      this.floodWritten += event.length;
      if (!res.write(event)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
    this.floodDone = this.floodWritten >= FLOOD_BYTES;
  }

  endStreams(): void {
    for (const res of this.openStreams) {
      res.end('id: 1\nevent: new_comment\ndata: {"type":"new_comment","track_id":"t1"}\n\n');
      this.streamsEnded++;
    }
    this.openStreams.clear();
  }

  count(method: string): number {
    return this.requests.filter((r) => r.method === method).length;
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    this.endStreams();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A replica that accepts the connection, reads the request, then drops the connection without answering. */
export async function startDroppingReplica(): Promise<{
  port: number;
  received: () => number;
  stop(): Promise<void>;
}> {
  let received = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', () => {
      received++;
      socket.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    received: () => received,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A loopback port with nothing listening (connect is refused). */
export async function deadPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export async function withNginx<T>(
  opts: Parameters<typeof startNginx>[0],
  body: (nginx: RunningNginx) => Promise<T>,
): Promise<T> {
  const nginx = await startNginx(opts);
  try {
    return await body(nginx);
  } finally {
    await nginx.stop();
  }
}
