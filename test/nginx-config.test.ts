import http from 'node:http';
import { checkNginxConfig } from '../harness/nginx';
import { waitFor } from '../harness/wait';
import {
  FakeReplica,
  SSE_LOCATION,
  block,
  deadPort,
  request,
  startDroppingReplica,
  withNginx,
  withoutComments,
} from './support/nginx-fakes';

describe('nginx config (nginx/trackcomments.conf.template)', () => {
  const upstreams = ['127.0.0.1:3101', '127.0.0.1:3102', '127.0.0.1:3103'];
  let checked: ReturnType<typeof checkNginxConfig>;
  let config: string;
  beforeAll(() => {
    checked = checkNginxConfig({ upstreams });
    config = withoutComments(checked.rendered);
  });

  it('passes nginx -t when rendered for 3 replicas', () => {
    expect(checked.output).toMatch(/test is successful/);
    expect(checked.ok).toBe(true);
    for (const u of upstreams)
      expect(block(config, 'upstream trackcomments_app {')).toContain(`server ${u} max_fails=0;`);
  });

  it('proxies the SSE streams unbuffered, uncompressed, with a read timeout above the heartbeat', () => {
    const sse = block(config, SSE_LOCATION);
    expect(sse).toMatch(/proxy_buffering off;/);
    expect(sse).toMatch(/proxy_cache off;/);
    expect(sse).toMatch(/gzip off;/);
    const timeout = /proxy_read_timeout (\d+)s;/.exec(sse);
    expect(timeout).not.toBeNull();
    expect(Number(timeout![1])).toBeGreaterThan(15);
    expect(sse).toMatch(/limit_conn trackcomments_streams \d+;/);
    // The event stream is never a gzip type anywhere.
    expect(config).not.toMatch(/text\/event-stream/);
    // Both stream paths, and nothing else, match the SSE location.
    const pattern = new RegExp(/location ~ "(\S+)" \{/.exec(SSE_LOCATION)![1]!);
    expect(pattern.test('/api/tracks/abc-123/events')).toBe(true);
    expect(pattern.test('/api/me/events')).toBe(true);
    expect(pattern.test('/api/tracks/abc/comments')).toBe(false);
    // Every track id of the contract's charset, 1-128 characters; other spellings are not streams.
    expect(pattern.test('/api/tracks/acc.opaque-Track~1:x_Y/events')).toBe(true);
    expect(pattern.test(`/api/tracks/${'a'.repeat(128)}/events`)).toBe(true);
    for (const other of [
      `/api/tracks/${'a'.repeat(129)}/events`,
      '/api/tracks/a b/events',
      '/api/tracks//events',
      '/api/me/events/',
      '/api/tracks/abc/events/',
      '/API/me/events',
      '/api/Me/events',
      '/api/tracks/abc/Events',
    ])
      expect([other, pattern.test(other)]).toEqual([other, false]);
  });

  it('keeps upstream connections alive and never retries a non-idempotent request', () => {
    expect(block(config, 'upstream trackcomments_app {')).toMatch(/keepalive \d+;/);
    expect(config).toMatch(/proxy_http_version 1\.1;/);
    expect(config).toMatch(/proxy_set_header Connection "";/);
    expect(config).toMatch(/proxy_next_upstream error timeout;/);
    expect(config).toMatch(/proxy_next_upstream_tries 2;/);
    expect(config).not.toMatch(/non_idempotent/);
    expect(config).toMatch(/client_max_body_size 64k;/);
  });

  it('bounds the time a request head and body may take, as REQUEST_TIMEOUT_MS does on a replica', () => {
    // nginx reads the whole request before it passes it on: the replica never sees a slow client.
    for (const directive of ['client_header_timeout', 'client_body_timeout']) {
      const m = new RegExp(`${directive} (\\d+)s;`).exec(config);
      expect([directive, m !== null]).toEqual([directive, true]);
      expect(Number(m![1])).toBeLessThanOrEqual(10);
    }
    expect(config).toMatch(/error_page 408 @request_timeout;/);
    expect(block(config, 'location @request_timeout {')).toMatch(/return 408 '\{"error":/);
  });

  it('logs no credentials and no query strings', () => {
    const format = /log_format trackcomments[\s\S]*?';\s*\n/.exec(config);
    expect(format).not.toBeNull();
    const text = format![0];
    expect(text).toContain('$uri');
    for (const forbidden of [
      '$http_authorization',
      '$http_cookie',
      '$cookie_',
      '$request_uri',
      '$args',
      '$arg_',
      '$query_string',
      '$is_args',
      '$http_referer',
    ]) {
      expect(text).not.toContain(forbidden);
    }
    // $request is the whole request line, query string included.
    expect(text).not.toMatch(/\$request(?![_a-z])/);
    expect(config).not.toMatch(/\$http_authorization|\$http_cookie/);
  });
});

describe('nginx in front of replicas', () => {
  const replica = new FakeReplica();
  beforeAll(() => replica.start());
  afterAll(() => replica.stop());

  it('delivers the first SSE event before the upstream response ends, and logs no secrets', async () => {
    await withNginx({ upstreams: [`127.0.0.1:${replica.port}`] }, async (nginx) => {
      let received = '';
      let res: http.IncomingMessage | undefined;
      const ended = new Promise<void>((resolve, reject) => {
        const req = http.get(
          `${nginx.url}/api/tracks/t1/events?last_event_id=5&token=query-secret`,
          {
            agent: false,
            headers: {
              Accept: 'text/event-stream',
              'Accept-Encoding': 'gzip',
              Authorization: 'Bearer header-secret',
              Cookie: 'access_token=cookie-secret',
              'X-Forwarded-For': '203.0.113.9',
            },
          },
          (r) => {
            res = r;
            r.setEncoding('utf8');
            r.on('data', (c: string) => (received += c));
            r.on('end', resolve);
            r.on('error', reject);
          },
        );
        req.on('error', reject);
      });

      await waitFor(() => received.includes('event: connected'), {
        what: 'the connected event through nginx',
      });
      // The replica still holds the response open: nginx did not wait for the end.
      expect(replica.openStreams.size).toBe(1);
      expect(replica.streamsEnded).toBe(0);
      expect(res!.headers['content-type']).toBe('text/event-stream');
      expect(res!.headers['content-encoding']).toBeUndefined();

      replica.endStreams();
      await ended;
      expect(received).toContain('event: new_comment');

      const seen = replica.requests.find((r) => r.url.startsWith('/api/tracks/t1/events'))!;
      // Query string passed through unchanged; client address set by nginx, the spoofed one dropped.
      expect(seen.url).toBe('/api/tracks/t1/events?last_event_id=5&token=query-secret');
      expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(seen.headers['x-real-ip']).toBe('127.0.0.1');
      expect(seen.headers['x-forwarded-proto']).toBe('http');
      expect(seen.headers['authorization']).toBe('Bearer header-secret');

      await waitFor(() => nginx.accessLog().includes('/api/tracks/t1/events'), {
        what: 'the access log line',
      });
      const log = nginx.accessLog();
      const line = JSON.parse(log.trim().split('\n').pop()!) as Record<string, unknown>;
      expect(line).toMatchObject({ method: 'GET', path: '/api/tracks/t1/events', status: 200 });
      for (const secret of [
        'query-secret',
        'header-secret',
        'cookie-secret',
        'last_event_id',
        '?',
      ]) {
        expect(log).not.toContain(secret);
      }
    });
  });

  it('passes a stream only as fast as the client reads it, so the replica sees a slow client', async () => {
    // With proxy_buffering on, nginx would keep reading from the replica into
    // memory and temp files (up to proxy_max_temp_file_size, 1 GB by default)
    // however slowly the client reads, and the app's rule "a subscriber that
    // cannot keep up is disconnected" could never trigger.
    await withNginx({ upstreams: [`127.0.0.1:${replica.port}`] }, async (nginx) => {
      const req = http.get(`${nginx.url}/api/tracks/flood/events`, { agent: false });
      try {
        // No 'data' listener: the client reads nothing beyond its socket buffer.
        await new Promise<void>((resolve, reject) => {
          req.once('response', () => resolve());
          req.once('error', reject);
        });
        // Wait until the replica's writes stall (no progress for 300 ms) or it wrote everything.
        let last = -1;
        let lastChange = Date.now();
        await waitFor(
          () => {
            if (replica.floodWritten !== last) {
              last = replica.floodWritten;
              lastChange = Date.now();
            }
            return replica.floodDone || Date.now() - lastChange > 300;
          },
          { what: 'the replica to stall or finish' },
        );
        expect(replica.floodDone).toBe(false);
        // What the kernel socket buffers and nginx's one proxy buffer hold, no more.
        expect(replica.floodWritten).toBeLessThan(24 * 1024 * 1024);
      } finally {
        req.destroy();
      }
    });
  });

  it('passes the X-Accel-Buffering header of a stream on to the client', async () => {
    await withNginx({ upstreams: [`127.0.0.1:${replica.port}`] }, async (nginx) => {
      const headers = await new Promise<http.IncomingHttpHeaders>((resolve, reject) => {
        const req = http.get(`${nginx.url}/api/me/events`, { agent: false }, (r) => {
          resolve(r.headers);
          req.destroy();
        });
        req.on('error', reject);
      });
      expect(headers['x-accel-buffering']).toBe('no');
      expect(headers['content-type']).toBe('text/event-stream');
    });
  });

  it('compresses JSON but refuses a 70 KB body with 413 in the contract error shape', async () => {
    await withNginx({ upstreams: [`127.0.0.1:${replica.port}`] }, async (nginx) => {
      const list = await request(`${nginx.url}/api/tracks/t1/comments`, {
        headers: { 'Accept-Encoding': 'gzip' },
      });
      expect(list.status).toBe(200);
      expect(list.headers['content-encoding']).toBe('gzip');

      const postsBefore = replica.count('POST');
      const small = await request(`${nginx.url}/api/tracks/t1/comments`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ content: 'x'.repeat(10 * 1024) }),
      });
      expect(small.status).toBe(201);

      const big = await request(`${nginx.url}/api/tracks/t1/comments`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ content: 'x'.repeat(70 * 1024) }),
      });
      expect(big.status).toBe(413);
      expect(big.headers['content-type']).toBe('application/json');
      expect(JSON.parse(big.body)).toEqual({
        error: { code: 'payload_too_large', message: expect.any(String) },
      });
      // Only the small body reached the replica.
      expect(replica.count('POST')).toBe(postsBefore + 1);
    });
  });

  it('answers 429 with the contract error shape when a client exceeds the write rate or stream count', async () => {
    await withNginx(
      {
        upstreams: [`127.0.0.1:${replica.port}`],
        writesPerSecond: 1,
        writeBurst: 1,
        streamsPerClient: 1,
      },
      async (nginx) => {
        const post = () =>
          request(`${nginx.url}/api/tracks/t1/comments`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: '{"content":"hi"}',
          });
        // One at the rate plus a burst of one, then refused.
        expect((await post()).status).toBe(201);
        expect((await post()).status).toBe(201);
        const limited = await post();
        expect(limited.status).toBe(429);
        expect(limited.headers['retry-after']).toBe('1');
        expect(JSON.parse(limited.body)).toEqual({
          error: { code: 'rate_limited', message: expect.any(String) },
        });
        // Reads are not counted as writes.
        for (let i = 0; i < 5; i++) {
          expect((await request(`${nginx.url}/api/tracks/t1/comments`)).status).toBe(200);
        }

        // One open stream is allowed; the second concurrent one is refused.
        const open = await new Promise<http.ClientRequest>((resolve, reject) => {
          const req = http.get(`${nginx.url}/api/tracks/t1/events`, { agent: false }, (r) => {
            r.once('data', () => resolve(req));
          });
          req.on('error', reject);
        });
        try {
          const second = await request(`${nginx.url}/api/me/events`);
          expect(second.status).toBe(429);
          expect(JSON.parse(second.body).error.code).toBe('rate_limited');
        } finally {
          open.destroy();
        }
      },
    );
  });

  it('fails over when connecting to a replica fails, also for POST', async () => {
    const dead = await deadPort();
    await withNginx(
      { upstreams: [`127.0.0.1:${dead}`, `127.0.0.1:${replica.port}`] },
      async (nginx) => {
        const before = replica.count('POST');
        for (let i = 0; i < 4; i++) {
          const res = await request(`${nginx.url}/api/tracks/t1/comments`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: '{"content":"hi"}',
          });
          expect(res.status).toBe(201);
        }
        expect(replica.count('POST')).toBe(before + 4);
        expect(nginx.errorLog()).toMatch(/connect\(\) failed \(111: Connection refused\)/);
      },
    );
  });

  it('retries a GET on another replica but never a POST that reached one', async () => {
    const dropping = await startDroppingReplica();
    try {
      const upstreams = [`127.0.0.1:${dropping.port}`, `127.0.0.1:${replica.port}`];
      await withNginx({ upstreams }, async (nginx) => {
        for (let i = 0; i < 4; i++) {
          expect((await request(`${nginx.url}/api/tracks/t1/comments`)).status).toBe(200);
        }
        expect(dropping.received()).toBeGreaterThanOrEqual(1);
      });

      await withNginx({ upstreams }, async (nginx) => {
        const droppedBefore = dropping.received();
        const postsBefore = replica.count('POST');
        const statuses: number[] = [];
        // least_conn reaches the dropping replica within the first two requests.
        for (let i = 0; i < 4; i++) {
          const res = await request(`${nginx.url}/api/tracks/t1/comments`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: '{"content":"hi"}',
          });
          statuses.push(res.status);
          if (res.status === 502) {
            expect(JSON.parse(res.body).error.code).toBe('bad_gateway');
          }
        }
        // max_fails=0 keeps the dropping replica in rotation: each POST it received failed
        // with 502 and was not sent again elsewhere; the others reached the healthy replica once.
        const dropped = dropping.received() - droppedBefore;
        expect(dropped).toBeGreaterThanOrEqual(1);
        expect(statuses.filter((s) => s === 502)).toHaveLength(dropped);
        expect(replica.count('POST')).toBe(postsBefore + 4 - dropped);
      });
    } finally {
      await dropping.stop();
    }
  });
});
