import path from 'node:path';
import type { TlsFiles } from './tls';

/*
 * The templates in nginx/ and how their NGINX_* placeholders are filled in (tests, bench).
 * nginx/render.sh does the same for bare metal; test/nginx-config.test.ts checks both.
 */

/** The one proxy config, shared by docker compose and the tests. */
export const NGINX_TEMPLATE_PATH = path.resolve(__dirname, '../nginx/trackcomments.conf.template');
/** The optional plain-HTTP server that redirects to HTTPS. */
export const NGINX_REDIRECT_TEMPLATE_PATH = path.resolve(
  __dirname,
  '../nginx/http-redirect.conf.template',
);

/** Edge limits used when a test does not choose its own; the same defaults as docker-compose.yml. */
export const NGINX_DEFAULT_LIMITS = {
  streamsPerClient: 40,
  writesPerSecond: 20,
  writeBurst: 40,
} as const;

export interface NginxOptions {
  /** Replicas as 'host:port'. */
  upstreams: string[];
  /**
   * Replicas as 'host:port' that nginx uses only while every one of `upstreams` is failing
   * (`server … backup;`): lets a test pin traffic to one replica yet still fail over.
   */
  backupUpstreams?: string[];
  /** Open SSE streams per client address (limit_conn). */
  streamsPerClient?: number;
  /** Sustained non-GET requests per second per client address (limit_req). */
  writesPerSecond?: number;
  /** Writes above the rate accepted at once before 429. */
  writeBurst?: number;
  /**
   * HTTPS with HTTP/2 instead of plain HTTP: with these PEM files, or (`true`) with a
   * self-signed certificate for 127.0.0.1 made by `openssl` into nginx's temp prefix.
   */
  tls?: true | TlsFiles;
  /** With `tls`: also a plain-HTTP port whose every request is redirected (308) to HTTPS. */
  httpRedirect?: boolean;
}

/** Where nginx listens: the address only; the TLS parameters are added from the options. */
export interface Listening {
  listen: string;
  /** With `httpRedirect`. */
  redirectListen?: string;
}

/** How the template's TLS placeholders are filled in (nginx version dependent, see tls.ts). */
export interface TlsValues {
  files: TlsFiles;
  /** `http2 on;` (nginx >= 1.25.1) rather than `listen … http2`. */
  http2Directive: boolean;
}

/** Values for the templates' NGINX_* placeholders. */
export function nginxTemplateValues(
  opts: NginxOptions & Listening & { accessLog: string; tlsValues?: TlsValues },
): Record<string, string> {
  if (opts.upstreams.length === 0) throw new Error('startNginx needs at least one upstream');
  const backups = opts.backupUpstreams ?? [];
  for (const u of [...opts.upstreams, ...backups]) {
    if (!/^[A-Za-z0-9.\-[\]:]+:\d+$/.test(u)) throw new Error(`upstream must be host:port: ${u}`);
  }
  const limits = { ...NGINX_DEFAULT_LIMITS, ...definedOnly(opts) };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be an integer >= 1`);
  }
  const tls = opts.tlsValues;
  if (opts.httpRedirect && (!tls || !opts.redirectListen)) {
    throw new Error('httpRedirect needs tls and a redirect address');
  }
  const files = tls
    ? `ssl_certificate ${tls.files.certificate}; ssl_certificate_key ${tls.files.key};`
    : '';
  return {
    NGINX_LISTEN: !tls ? opts.listen : `${opts.listen} ssl${tls.http2Directive ? '' : ' http2'}`,
    NGINX_TLS: !tls ? '' : tls.http2Directive ? `http2 on; ${files}` : files,
    NGINX_HTTP_REDIRECT_LISTEN: opts.redirectListen ?? '',
    NGINX_HTTPS_PORT: opts.listen.replace(/^.*:/, ''),
    NGINX_ACCESS_LOG: opts.accessLog,
    NGINX_UPSTREAM_SERVERS: [
      ...opts.upstreams.map((u) => `server ${u} max_fails=0;`),
      ...backups.map((u) => `server ${u} max_fails=0 backup;`),
    ].join(' '),
    NGINX_STREAMS_PER_CLIENT: String(limits.streamsPerClient),
    NGINX_WRITES_PER_SECOND: String(limits.writesPerSecond),
    NGINX_WRITE_BURST: String(limits.writeBurst),
  };
}

function definedOnly(opts: NginxOptions): Partial<typeof NGINX_DEFAULT_LIMITS> {
  const picked: Record<string, number> = {};
  for (const key of ['streamsPerClient', 'writesPerSecond', 'writeBurst'] as const) {
    if (opts[key] !== undefined) picked[key] = opts[key];
  }
  return picked;
}

/**
 * Substitutes `${NAME}` placeholders the way the nginx image's envsubst step
 * does, and fails on any NGINX_* placeholder left without a value.
 */
export function renderNginxTemplate(template: string, values: Record<string, string>): string {
  const rendered = template.replace(/\$\{([A-Z][A-Z0-9_]*)\}/g, (whole, name: string) =>
    Object.prototype.hasOwnProperty.call(values, name) ? values[name]! : whole,
  );
  const left = rendered.match(/\$\{NGINX_[A-Z0-9_]+\}/);
  if (left) throw new Error(`nginx template placeholder without a value: ${left[0]}`);
  return rendered;
}
