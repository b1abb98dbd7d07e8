import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import type tls from 'node:tls';
import { checkNginxConfig, findNginxBinary } from '../harness/nginx';
import {
  hasHttp2Directive,
  makeSelfSignedCertificate,
  nginxVersion,
  type TlsFiles,
} from '../harness/tls';
import { waitFor } from '../harness/wait';
import {
  FakeReplica,
  SSE_LOCATION,
  block,
  request,
  withNginx,
  withoutComments,
} from './support/nginx-fakes';

/**
 * TLS + HTTP/2 at the edge (issue 12): every variant nginx/render.sh and the test harness
 * render passes `nginx -t` on this host's nginx, and a real nginx with TLS speaks h2, streams
 * unbuffered, forwards Host and the https scheme, and redirects plain HTTP.
 */

/** nginx/render.sh's output for `env` (on top of a fixed upstream and a temp access log). */
function renderSh(env: Record<string, string>, logDir: string): string {
  const result = spawnSync('sh', [path.resolve(__dirname, '../nginx/render.sh')], {
    encoding: 'utf8',
    timeout: 15000,
    env: {
      PATH: process.env.PATH,
      NGINX_BIN: findNginxBinary(),
      NGINX_UPSTREAM_SERVERS: 'server 127.0.0.1:3101 max_fails=0;',
      NGINX_ACCESS_LOG: path.join(logDir, 'access.log'),
      ...env,
    },
  });
  if (result.status !== 0) throw new Error(`render.sh failed: ${result.stderr}`);
  return result.stdout;
}

describe('nginx config with TLS + HTTP/2 and the HTTP->HTTPS redirect', () => {
  const upstreams = ['127.0.0.1:3101'];
  const http2Directive = hasHttp2Directive(nginxVersion(findNginxBinary()));
  let dir: string;
  let cert: TlsFiles;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trackcomments-tls-'));
    cert = makeSelfSignedCertificate(dir);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('passes nginx -t for plain, TLS and TLS + redirect, as the tests render them', () => {
    for (const variant of [{}, { tls: cert }, { tls: true as const, httpRedirect: true }]) {
      const checked = checkNginxConfig({ upstreams, ...variant });
      expect([variant, checked.output]).toEqual([variant, expect.stringMatching(/successful/)]);
      const server = block(withoutComments(checked.rendered), 'server {');
      if (!('tls' in variant)) {
        expect(server).toMatch(/listen 127\.0\.0\.1:1 default_server;/);
        expect(server).not.toMatch(/ssl_certificate |http2/);
        continue;
      }
      // HTTP/2 the way this nginx takes it; the same certificate and key as given.
      expect(server).toMatch(
        http2Directive
          ? /listen 127\.0\.0\.1:1 ssl default_server;[^{}]*\shttp2 on;/
          : /listen 127\.0\.0\.1:1 ssl http2 default_server;/,
      );
      expect(server).toMatch(/ssl_certificate \S+tls\.crt; ssl_certificate_key \S+tls\.key;/);
      // Still the one SSE location, unbuffered: nothing about streams depends on the protocol.
      expect(block(server, SSE_LOCATION)).toMatch(/proxy_buffering off;/);
      expect(server).toMatch(/proxy_set_header X-Forwarded-Proto \$scheme;/);
      const redirect = checked.rendered.indexOf('listen 127.0.0.1:2 default_server;');
      expect(redirect >= 0).toBe('httpRedirect' in variant);
    }
  });

  it('passes nginx -t for every variant nginx/render.sh renders on this host', () => {
    const tls = { NGINX_TLS_CERTIFICATE: cert.certificate, NGINX_TLS_CERTIFICATE_KEY: cert.key };
    const variants: Record<string, Record<string, string>> = {
      plain: { NGINX_LISTEN: '127.0.0.1:8080' },
      tls: { ...tls, NGINX_LISTEN: '127.0.0.1:8443' },
      redirect: { ...tls, NGINX_LISTEN: '127.0.0.1:8443', NGINX_HTTP_REDIRECT_LISTEN: '8080' },
    };
    for (const [name, env] of Object.entries(variants)) {
      const checked = checkNginxConfig({ rendered: renderSh(env, dir) });
      expect([name, checked.output]).toEqual([name, expect.stringMatching(/successful/)]);
    }
    const redirect = renderSh(variants.redirect!, dir);
    expect(redirect).toMatch(/return 308 https:\/\/\$host:8443\$request_uri;/);
    expect(redirect).not.toMatch(/\$\{NGINX_/);
  });

  it('renders "http2 on;" for nginx >= 1.25.1 (compose) and the listen parameter before', () => {
    const env = { NGINX_TLS_CERTIFICATE: '/etc/nginx/tls/tls.crt', NGINX_TLS_CERTIFICATE_KEY: 'k' };
    const newer = withoutComments(renderSh({ ...env, NGINX_VERSION: '1.27.3' }, dir));
    expect(newer).toMatch(/listen 443 ssl default_server;[^{}]*\shttp2 on; ssl_certificate /);
    expect(newer).not.toMatch(/ssl http2/);
    const older = withoutComments(renderSh({ ...env, NGINX_VERSION: '1.25.0' }, dir));
    expect(older).toMatch(/listen 443 ssl http2 default_server;/);
    expect(older).not.toMatch(/http2 on;/);
    expect([hasHttp2Directive('1.25.1'), hasHttp2Directive('1.24.9')]).toEqual([true, false]);
  });
});

/** One HTTP/2 request; resolves at the response headers with what arrived so far, and the session. */
function h2Get(
  session: http2.ClientHttp2Session,
  urlPath: string,
): Promise<{
  headers: http2.IncomingHttpHeaders;
  body: () => string;
  stream: http2.ClientHttp2Stream;
}> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': urlPath, accept: 'text/event-stream' });
    let body = '';
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => (body += c));
    stream.on('error', reject);
    stream.on('response', (headers) => resolve({ headers, body: () => body, stream }));
  });
}

describe('nginx with TLS + HTTP/2 in front of a replica', () => {
  const replica = new FakeReplica();
  beforeAll(() => replica.start());
  afterAll(() => replica.stop());

  it('speaks h2 with its certificate, streams unbuffered, and forwards Host and the https scheme', async () => {
    await withNginx({ upstreams: [`127.0.0.1:${replica.port}`], tls: true }, async (nginx) => {
      expect(nginx.url).toBe(`https://127.0.0.1:${nginx.port}`);
      // Verified against the served certificate: its name covers 127.0.0.1.
      const session = http2.connect(nginx.url, { ca: nginx.certificate });
      try {
        const sse = await h2Get(session, '/api/tracks/t1/events');
        expect((session.socket as tls.TLSSocket).alpnProtocol).toBe('h2');
        expect(sse.headers[':status']).toBe(200);
        expect(sse.headers['content-type']).toBe('text/event-stream');
        await waitFor(() => sse.body().includes('event: connected'), {
          what: 'the connected event over HTTP/2',
        });
        // The replica still holds the stream open: nginx passed the event on at once.
        expect(replica.openStreams.size).toBe(1);
        const seen = replica.requests.find((r) => r.url === '/api/tracks/t1/events')!;
        // The Host the browser used (from :authority), port included, for the Origin check.
        expect(seen.headers.host).toBe(`127.0.0.1:${nginx.port}`);
        expect(seen.headers['x-forwarded-proto']).toBe('https');
        const ended = new Promise((resolve) => sse.stream.on('end', resolve));
        replica.endStreams();
        await ended;
        expect(sse.body()).toContain('event: new_comment');
      } finally {
        session.destroy();
      }
    });
  });

  it('redirects plain HTTP to HTTPS with 308, path and query kept, a POST included', async () => {
    const opts = {
      upstreams: [`127.0.0.1:${replica.port}`],
      tls: true as const,
      httpRedirect: true,
    };
    await withNginx(opts, async (nginx) => {
      const before = replica.requests.length;
      const get = await request(`${nginx.redirectUrl!}/api/tracks/t1/comments?limit=5`);
      expect(get.status).toBe(308);
      expect(get.headers.location).toBe(`${nginx.url}/api/tracks/t1/comments?limit=5`);
      const post = await request(`${nginx.redirectUrl!}/api/tracks/t1/comments`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{"content":"hi"}',
      });
      expect(post.status).toBe(308);
      expect(post.headers.location).toBe(`${nginx.url}/api/tracks/t1/comments`);
      // Nothing reached the replica over plain HTTP.
      expect(replica.requests.length).toBe(before);
    });
  });
});
