import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  NGINX_REDIRECT_TEMPLATE_PATH,
  NGINX_TEMPLATE_PATH,
  nginxTemplateValues,
  renderNginxTemplate,
  type Listening,
  type NginxOptions,
} from './nginx-template';
import { freePort } from './ports';
import { canConnect, stopGroup, trackGroup } from './process-group';
import { hasHttp2Directive, makeSelfSignedCertificate, nginxVersion } from './tls';
import { waitFor } from './wait';

export {
  NGINX_DEFAULT_LIMITS,
  NGINX_REDIRECT_TEMPLATE_PATH,
  NGINX_TEMPLATE_PATH,
  nginxTemplateValues,
  renderNginxTemplate,
  type NginxOptions,
  type TlsValues,
} from './nginx-template';

export interface RunningNginx {
  /** e.g. http://127.0.0.1:41234, or https://… with `tls`. */
  url: string;
  port: number;
  /** With `httpRedirect`: the plain-HTTP origin that redirects to `url`. */
  redirectUrl?: string;
  /** With `tls`: the certificate nginx serves (PEM), for clients that trust it. */
  certificate?: string;
  pid: number;
  /** The access log so far (JSON lines, format `trackcomments`). */
  accessLog(): string;
  errorLog(): string;
  /** Stops nginx (SIGTERM, SIGKILL to the process group after 5 s) and removes its files. */
  stop(): Promise<void>;
}

export function findNginxBinary(): string {
  if (process.env.NGINX_BIN) return process.env.NGINX_BIN;
  for (const candidate of [
    '/usr/sbin/nginx',
    '/usr/local/sbin/nginx',
    '/usr/local/nginx/sbin/nginx',
  ]) {
    if (fs.existsSync(candidate)) return candidate;
  }
  return 'nginx';
}

interface Prefix {
  dir: string;
  mainConf: string;
  errorLog: string;
  accessLog: string;
  pidFile: string;
  /** With `tls`: the certificate file nginx serves. */
  certificate?: string;
}

/**
 * Writes a prefix directory: the rendered template plus a minimal main
 * nginx.conf wrapping it (like the official image's nginx.conf, whose http{}
 * includes conf.d/*.conf). Temp paths point into the prefix so nothing under
 * /var/lib/nginx is touched.
 */
function writePrefix(opts: ConfigSource): Prefix {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trackcomments-nginx-'));
  try {
    return writePrefixFiles(dir, opts);
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** What a prefix's trackcomments.conf comes from: options, or an already rendered text. */
type ConfigSource = (NginxOptions & Listening) | { rendered: string };

/** Renders the templates for `opts` into `dir`; makes the test certificate if asked to. */
function renderInto(
  dir: string,
  opts: NginxOptions & Listening,
  accessLog: string,
): { rendered: string; certificate?: string } {
  const tlsFiles = opts.tls === true ? makeSelfSignedCertificate(path.join(dir, 'tls')) : opts.tls;
  const tlsValues = tlsFiles && {
    files: tlsFiles,
    http2Directive: hasHttp2Directive(nginxVersion(findNginxBinary())),
  };
  const values = nginxTemplateValues({ ...opts, accessLog, tlsValues });
  // The redirect server goes after the app server, as nginx/render.sh appends it.
  const rendered = [
    NGINX_TEMPLATE_PATH,
    ...(opts.httpRedirect ? [NGINX_REDIRECT_TEMPLATE_PATH] : []),
  ]
    .map((template) => renderNginxTemplate(fs.readFileSync(template, 'utf8'), values))
    .join('\n');
  return { rendered, certificate: tlsFiles?.certificate };
}

function writePrefixFiles(dir: string, opts: ConfigSource): Prefix {
  const tmp = path.join(dir, 'tmp');
  fs.mkdirSync(tmp);
  const accessLog = path.join(dir, 'access.log');
  const { rendered, certificate } =
    'rendered' in opts ? { rendered: opts.rendered } : renderInto(dir, opts, accessLog);
  fs.writeFileSync(path.join(dir, 'trackcomments.conf'), rendered);
  const errorLog = path.join(dir, 'error.log');
  const mimeTypes = '/etc/nginx/mime.types';
  const runningAsRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const main = [
    // As root, nginx would switch workers to an unprivileged user that cannot
    // use this private prefix; keep them as the invoking user.
    runningAsRoot ? 'user root;' : '',
    'worker_processes 1;',
    // SSE load tests open thousands of streams; each uses two connections.
    'worker_rlimit_nofile 20000;',
    `error_log ${errorLog} warn;`,
    'events { worker_connections 8192; }',
    'http {',
    fs.existsSync(mimeTypes) ? `  include ${mimeTypes};` : '',
    '  default_type application/octet-stream;',
    '  sendfile on;',
    '  keepalive_timeout 65;',
    `  client_body_temp_path ${tmp}/client_body;`,
    `  proxy_temp_path ${tmp}/proxy;`,
    `  fastcgi_temp_path ${tmp}/fastcgi;`,
    `  uwsgi_temp_path ${tmp}/uwsgi;`,
    `  scgi_temp_path ${tmp}/scgi;`,
    `  include ${path.join(dir, 'trackcomments.conf')};`,
    '}',
    '',
  ]
    .filter((line) => line !== '')
    .join('\n');
  const mainConf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(mainConf, main + '\n');
  return {
    dir,
    mainConf,
    errorLog,
    accessLog,
    pidFile: path.join(dir, 'nginx.pid'),
    certificate,
  };
}

function nginxArgs(prefix: Prefix, extra: string[] = []): string[] {
  return [
    '-p',
    prefix.dir,
    '-c',
    prefix.mainConf,
    '-e',
    prefix.errorLog,
    ...extra,
    '-g',
    `daemon off; pid ${prefix.pidFile};`,
  ];
}

const readOrEmpty = (file: string): string => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

/**
 * Renders the config for `opts` (or takes `rendered`, e.g. nginx/render.sh's output) and runs
 * `nginx -t` on it.
 */
export function checkNginxConfig(opts: NginxOptions | { rendered: string }): {
  ok: boolean;
  output: string;
  rendered: string;
} {
  // nginx -t binds nothing: any addresses do.
  const prefix = writePrefix(
    'rendered' in opts ? opts : { ...opts, listen: '127.0.0.1:1', redirectListen: '127.0.0.1:2' },
  );
  try {
    const result = spawnSync(findNginxBinary(), nginxArgs(prefix, ['-t']), {
      encoding: 'utf8',
      timeout: 15000,
    });
    return {
      ok: result.status === 0,
      output: `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}`,
      rendered: fs.readFileSync(path.join(prefix.dir, 'trackcomments.conf'), 'utf8'),
    };
  } finally {
    fs.rmSync(prefix.dir, { recursive: true, force: true });
  }
}

async function startOnce(
  opts: NginxOptions,
  port: number,
  redirectPort: number | undefined,
): Promise<RunningNginx> {
  const prefix = writePrefix({
    ...opts,
    listen: `127.0.0.1:${port}`,
    redirectListen: redirectPort === undefined ? undefined : `127.0.0.1:${redirectPort}`,
  });
  const output = fs.openSync(path.join(prefix.dir, 'output.log'), 'a');
  let child: ChildProcess;
  try {
    child = spawn(findNginxBinary(), nginxArgs(prefix), {
      stdio: ['ignore', output, output],
      detached: true,
    });
  } finally {
    fs.closeSync(output);
  }
  trackGroup(child);
  let spawnFailure: Error | undefined;
  child.once('error', (err) => (spawnFailure = err));
  let removed = false;
  let finalLogs: { access: string; error: string } | undefined;
  const logs = () =>
    finalLogs ?? {
      access: readOrEmpty(prefix.accessLog),
      error: readOrEmpty(prefix.errorLog) + readOrEmpty(path.join(prefix.dir, 'output.log')),
    };
  const stop = async () => {
    if (removed) return;
    await stopGroup(child);
    finalLogs = logs();
    removed = true;
    fs.rmSync(prefix.dir, { recursive: true, force: true });
  };
  try {
    await waitFor(() => canConnect(port), {
      what: `nginx to listen on ${port}`,
      timeoutMs: 10000,
      intervalMs: 20,
      failIf: () => {
        if (spawnFailure) return `could not run nginx: ${spawnFailure.message}`;
        if (child.exitCode === null && child.signalCode === null) return undefined;
        return `nginx exited at start (${child.exitCode ?? child.signalCode}): ${logs().error}`;
      },
    });
  } catch (err) {
    const errorLog = logs().error;
    await stop();
    const message = (err as Error).message;
    // The error log says why nginx did not come up; the exit message already carries it.
    throw message.includes(errorLog) ? err : new Error(`${message}: ${errorLog}`, { cause: err });
  }
  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    redirectUrl: redirectPort === undefined ? undefined : `http://127.0.0.1:${redirectPort}`,
    certificate: prefix.certificate && fs.readFileSync(prefix.certificate, 'utf8'),
    pid: child.pid!,
    accessLog: () => logs().access,
    errorLog: () => logs().error,
    stop,
  };
}

/**
 * Runs the real nginx with nginx/trackcomments.conf.template in front of
 * `upstreams`, on a free loopback port (HTTPS + HTTP/2 with `tls`). Resolves once nginx accepts
 * connections. Call stop() in afterAll/finally; nginx is also killed if the
 * test process exits.
 */
export async function startNginx(opts: NginxOptions): Promise<RunningNginx> {
  let lastError: unknown;
  // The free port can be taken between probing and nginx binding it; retry.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const port = await freePort();
      let redirectPort = opts.httpRedirect ? await freePort() : undefined;
      while (redirectPort === port) redirectPort = await freePort();
      return await startOnce(opts, port, redirectPort);
    } catch (err) {
      lastError = err;
      if (!/Address already in use/.test(String(err))) throw err;
    }
  }
  throw lastError;
}
