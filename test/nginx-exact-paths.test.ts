/**
 * nginx binds its limits to the paths the app routes, however a client spells them
 * (contract section 7, "Exact paths"), passes on the Host the client used (the app's
 * cross-origin rule compares Origin with it), and keeps /metrics off the public path.
 * A stand-in replica records what reaches it.
 */
import http from 'node:http';
import net from 'node:net';
import { startNginx, type RunningNginx } from '../harness/nginx';
import { httpRequest, type HttpAnswer } from '../harness/http';

/** Records every request; holds `/events` paths open as streams, answers JSON otherwise. */
class RecordingReplica {
  readonly requests: { method: string; url: string; headers: http.IncomingHttpHeaders }[] = [];
  private readonly server = http.createServer((req, res) => {
    this.requests.push({ method: req.method!, url: req.url!, headers: req.headers });
    req.resume();
    req.on('end', () => {
      if (req.method === 'GET' && /\/events(?:\?|$)/.test(req.url!)) {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write('event: connected\ndata: {}\n\n');
        return;
      }
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'Content-Type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  port = 0;

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Requests whose raw URL is `url`. */
  saw(url: string): number {
    return this.requests.filter((r) => r.url === url).length;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

const replica = new RecordingReplica();
let nginx: RunningNginx;

beforeAll(async () => {
  await replica.start();
  nginx = await startNginx({
    upstreams: [`127.0.0.1:${replica.port}`],
    writesPerSecond: 1,
    writeBurst: 1,
  });
});

afterAll(async () => {
  await nginx?.stop();
  await replica.stop();
});

function expectNginxNotFound(res: HttpAnswer): void {
  expect(res.status).toBe(404);
  expect(res.headers['content-type']).toBe('application/json');
  expect(res.json).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
}

/** A request to nginx with its path sent exactly as written (see `HttpTarget`). */
function requestPath(
  path: string,
  method = 'GET',
  opts: { localAddress?: string; body?: string } = {},
): Promise<HttpAnswer> {
  return httpRequest({ port: nginx.port, path }, method, {
    ...opts,
    headers: opts.body === undefined ? {} : { 'Content-Type': 'application/json' },
    timeoutMs: 15000,
  });
}

/** Sends raw request bytes and resolves with everything nginx answered. */
function rawRequest(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let out = '';
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (d: Buffer) => (out += d.toString()));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}

describe('the Host the client used reaches the app', () => {
  test('port included, as the browser sent it', async () => {
    const url = '/api/tracks/t1/comments?host-check=1';
    await httpRequest(`${nginx.url}${url}`, 'GET');
    await httpRequest(`${nginx.url}${url}`, 'GET', { headers: { Host: 'svc.example:8443' } });
    const hosts = replica.requests.filter((r) => r.url === url).map((r) => r.headers.host);
    expect(hosts).toEqual([`127.0.0.1:${nginx.port}`, 'svc.example:8443']);
  });

  test('a request without Host (HTTP/1.0) still gets one', async () => {
    const url = '/healthz?no-host=1';
    const answer = await rawRequest(nginx.port, `GET ${url} HTTP/1.0\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    const seen = replica.requests.find((r) => r.url === url);
    expect(seen?.headers.host).toMatch(/\S/);
  });
});

describe('the write limit holds for every spelling of a path', () => {
  // One client address per spelling, so each starts with a full allowance (rate 1/s, burst 1).
  const spellings = [
    '/API/tracks/t1/comments',
    '/api/Tracks/t1/comments',
    '/api/tracks/t1/comments/',
    '/api/tracks/t1/events',
    '/api/me/events/',
    '/',
  ];
  test.each(spellings.map((p, i) => [p, `127.0.0.${i + 10}`]))(
    'POST %s',
    async (path, localAddress) => {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await requestPath(path, 'POST', { localAddress, body: '{}' });
        statuses.push(res.status);
      }
      // At most the rate plus the burst get through within the same second or two.
      expect(statuses).toContain(429);
      expect(statuses[0]).not.toBe(429);
    },
  );
});

describe('a dot segment never reaches the app (it would move a stream out of its location)', () => {
  test.each([
    '/api/tracks/./events',
    '/api/tracks/../events',
    '/api/tracks/%2e/events',
    '/api/tracks/.%2E/events?last_event_id=1',
    '/api/me/../me/events',
    '/api/tracks/../comments',
    '/api/../metrics',
  ])('GET %s is 404 at nginx', async (path) => {
    expectNginxNotFound(await requestPath(path));
    expect(replica.saw(path)).toBe(0);
  });

  test('dots inside a track id, and in a query string, pass', async () => {
    const stream = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get(
        { host: '127.0.0.1', port: nginx.port, path: '/api/tracks/..a.b~c:d/events', agent: false },
        resolve,
      );
      req.on('error', reject);
    });
    try {
      expect(stream.statusCode).toBe(200);
      expect(stream.headers['content-type']).toBe('text/event-stream');
    } finally {
      stream.destroy();
    }
    const path = '/api/tracks/t1/comments?cursor=/../x';
    expect((await requestPath(path)).status).toBe(200);
    expect(replica.saw(path)).toBe(1);
  });
});

describe('/metrics is off the public path', () => {
  test.each(['/metrics', '/metrics?format=text', '/%6Detrics'])(
    'GET %s from loopback is 404 at nginx',
    async (path) => {
      expectNginxNotFound(await requestPath(path));
      expect(replica.requests.filter((r) => r.url.includes('etrics'))).toEqual([]);
    },
  );
});
