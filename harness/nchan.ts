/**
 * A private nginx + Nchan (the `libnginx-mod-nchan` module), the bench's reference peer: each
 * instance is one nginx with one worker (as a replica is one Node process), and several
 * instances share one Redis (`nchan_redis_pass`) the way our replicas share the bus. Publish
 * with POST /pub/<channel>; subscribe with GET /sub/<channel> (EventSource).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findNginxBinary } from './nginx';
import { freePort } from './ports';
import { canConnect, stopGroup, trackGroup } from './process-group';
import { waitFor } from './wait';

const MODULE_CANDIDATES = [
  '/usr/lib/nginx/modules/ngx_nchan_module.so',
  '/usr/share/nginx/modules/ngx_nchan_module.so',
  '/usr/local/nginx/modules/ngx_nchan_module.so',
];

/** The Nchan module's path, or why it cannot be used (one line). */
export function findNchanModule(): { path: string } | { missing: string } {
  const found = MODULE_CANDIDATES.find((p) => fs.existsSync(p));
  if (found) return { path: found };
  return {
    missing: `Nchan is not installed (no ngx_nchan_module.so; apt-get install libnginx-mod-nchan)`,
  };
}

export interface NchanOptions {
  /** The shared Redis, e.g. redis://127.0.0.1:6379. */
  redisUrl: string;
  /** Connections one nginx worker may hold (subscribers + publishers + slack). */
  connections: number;
  /** The `event:` name of every message on the subscriber stream. */
  eventName: string;
  /** A `: ping` comment on every stream this often (seconds), as our heartbeat; none if unset. */
  pingIntervalS?: number;
}

export interface RunningNchan {
  url: string;
  port: number;
  /** The nginx master; its worker is a child. */
  pid: number;
  errorLog(): string;
  /** Stops nginx (SIGTERM, SIGKILL to the group after 5 s) and removes its files. Idempotent. */
  stop(): Promise<void>;
}

function config(modulePath: string, dir: string, port: number, opts: NchanOptions): string {
  const redis = new URL(opts.redisUrl);
  if (redis.protocol !== 'redis:') throw new Error(`redisUrl must be redis://: ${opts.redisUrl}`);
  const runningAsRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const tmp = path.join(dir, 'tmp');
  return [
    `load_module ${modulePath};`,
    runningAsRoot ? 'user root;' : '',
    'worker_processes 1;',
    `worker_rlimit_nofile ${opts.connections + 1000};`,
    `error_log ${path.join(dir, 'error.log')} warn;`,
    `events { worker_connections ${opts.connections}; }`,
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${tmp}/client_body;`,
    `  proxy_temp_path ${tmp}/proxy;`,
    `  fastcgi_temp_path ${tmp}/fastcgi;`,
    `  uwsgi_temp_path ${tmp}/uwsgi;`,
    `  scgi_temp_path ${tmp}/scgi;`,
    `  upstream nchan_redis { nchan_redis_server redis://${redis.host}; }`,
    '  server {',
    `    listen 127.0.0.1:${port};`,
    '    location ~ ^/sub/([A-Za-z0-9_-]+)$ {',
    '      nchan_subscriber eventsource;',
    '      nchan_channel_id $1;',
    '      nchan_redis_pass nchan_redis;',
    `      nchan_eventsource_event ${opts.eventName};`,
    // `: ping` alone, as ours: an empty ping event name (else also `event: ping`), and the
    // comment with its leading space (Nchan writes `:` and the text).
    ...(opts.pingIntervalS
      ? [
          `      nchan_eventsource_ping_interval ${opts.pingIntervalS};`,
          '      nchan_eventsource_ping_comment " ping";',
          '      nchan_eventsource_ping_event "";',
        ]
      : []),
    '    }',
    '    location ~ ^/pub/([A-Za-z0-9_-]+)$ {',
    '      nchan_publisher;',
    '      nchan_channel_id $1;',
    '      nchan_redis_pass nchan_redis;',
    '      nchan_message_buffer_length 1000;',
    '      nchan_message_timeout 10m;',
    '    }',
    '  }',
    '}',
    '',
  ]
    .filter((line) => line !== '')
    .join('\n');
}

/** One nginx + Nchan on a free loopback port; resolves once it accepts connections. */
export async function startNchan(opts: NchanOptions): Promise<RunningNchan> {
  const mod = findNchanModule();
  if ('missing' in mod) throw new Error(mod.missing);
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trackcomments-nchan-'));
  fs.mkdirSync(path.join(dir, 'tmp'));
  const conf = path.join(dir, 'nginx.conf');
  const errorLog = path.join(dir, 'error.log');
  fs.writeFileSync(conf, config(mod.path, dir, port, opts));
  const out = fs.openSync(path.join(dir, 'output.log'), 'a');
  let child: ChildProcess;
  try {
    const args = ['-p', dir, '-c', conf, '-e', errorLog];
    args.push('-g', `daemon off; pid ${path.join(dir, 'nginx.pid')};`);
    // Own process group, so that the worker is stopped with the master.
    child = spawn(findNginxBinary(), args, { stdio: ['ignore', out, out], detached: true });
  } finally {
    fs.closeSync(out);
  }
  trackGroup(child);
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  const read = (f: string) => {
    try {
      return fs.readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  const logs = () => read(errorLog) + read(path.join(dir, 'output.log'));
  let finalLogs: string | undefined;
  const stop = async () => {
    if (finalLogs !== undefined) return;
    await stopGroup(child);
    finalLogs = logs();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(() => canConnect(port), {
      what: `nginx+nchan to listen on ${port}`,
      timeoutMs: 10000,
      intervalMs: 20,
      failIf: () => {
        if (spawnError) return `could not run nginx: ${spawnError.message}`;
        if (child.exitCode === null && child.signalCode === null) return undefined;
        return `nginx exited at start: ${logs()}`;
      },
    });
    // Nchan connects to Redis after it listens and answers 503 until then.
    await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/pub/ready-probe`);
        await res.arrayBuffer();
        return res.status !== 503;
      },
      {
        what: `nginx+nchan on ${port} to reach Redis`,
        timeoutMs: 10000,
        intervalMs: 20,
      },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    errorLog: () => finalLogs ?? logs(),
    stop,
  };
}
