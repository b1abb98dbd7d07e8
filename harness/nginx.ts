import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports';
import { waitFor } from './wait';

/** The one proxy config, shared by docker compose and the tests. */
export const NGINX_TEMPLATE_PATH = path.resolve(__dirname, '../nginx/trackcomments.conf.template');

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
}

export interface RunningNginx {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  port: number;
  pid: number;
  /** The access log so far (JSON lines, format `trackcomments`). */
  accessLog(): string;
  errorLog(): string;
  /** Stops nginx (SIGTERM, SIGKILL to the process group after 5 s) and removes its files. */
  stop(): Promise<void>;
}

/** Values for the template's NGINX_* placeholders. */
export function nginxTemplateValues(
  opts: NginxOptions & { listen: string; accessLog: string },
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
  return {
    NGINX_LISTEN: opts.listen,
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
}

/**
 * Writes a prefix directory: the rendered template plus a minimal main
 * nginx.conf wrapping it (like the official image's nginx.conf, whose http{}
 * includes conf.d/*.conf). Temp paths point into the prefix so nothing under
 * /var/lib/nginx is touched.
 */
function writePrefix(opts: NginxOptions & { listen: string }): Prefix {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trackcomments-nginx-'));
  try {
    return writePrefixFiles(dir, opts);
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function writePrefixFiles(dir: string, opts: NginxOptions & { listen: string }): Prefix {
  const tmp = path.join(dir, 'tmp');
  fs.mkdirSync(tmp);
  const accessLog = path.join(dir, 'access.log');
  const rendered = renderNginxTemplate(
    fs.readFileSync(NGINX_TEMPLATE_PATH, 'utf8'),
    nginxTemplateValues({ ...opts, accessLog }),
  );
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

/** Renders the config for `opts` and runs `nginx -t` on it. */
export function checkNginxConfig(opts: NginxOptions): {
  ok: boolean;
  output: string;
  rendered: string;
} {
  const prefix = writePrefix({ ...opts, listen: '127.0.0.1:1' });
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

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** nginx is started detached (own process group) so its workers can be killed with it. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) killGroup(child, 'SIGKILL');
});

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  live.delete(child);
  if (child.pid === undefined) return; // never started
  // SIGTERM is nginx's fast shutdown; SIGQUIT (graceful) would wait for
  // every open SSE stream to end.
  killGroup(child, 'SIGTERM');
  if (!(await waitForExit(child, 5000))) {
    killGroup(child, 'SIGKILL');
    await waitForExit(child, 5000);
  }
  // Workers may outlive a SIGKILLed master; the group kill above reaches them.
  killGroup(child, 'SIGKILL');
}

async function startOnce(opts: NginxOptions, port: number): Promise<RunningNginx> {
  const prefix = writePrefix({ ...opts, listen: `127.0.0.1:${port}` });
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
  live.add(child);
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
    await stopChild(child);
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
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    accessLog: () => logs().access,
    errorLog: () => logs().error,
    stop,
  };
}

/**
 * Runs the real nginx with nginx/trackcomments.conf.template in front of
 * `upstreams`, on a free loopback port. Resolves once nginx accepts
 * connections. Call stop() in afterAll/finally; nginx is also killed if the
 * test process exits.
 */
export async function startNginx(opts: NginxOptions): Promise<RunningNginx> {
  let lastError: unknown;
  // The free port can be taken between probing and nginx binding it; retry.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts, await freePort());
    } catch (err) {
      lastError = err;
      if (!/Address already in use/.test(String(err))) throw err;
    }
  }
  throw lastError;
}
