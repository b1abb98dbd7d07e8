/**
 * `npx tsx bench/stream-memory.ts [--streams N] [--kind track|user] [--log-level L]`:
 * server memory per idle open SSE stream.
 *
 * Starts one replica (PostgreSQL test database, in-process bus) as a child
 * process, seeds a user/album/track over the admin API, then measures the
 * replica's RSS (/proc/<pid>/status) and its heap after a forced GC with no
 * stream open, opens N idle authenticated streams over raw sockets, waits
 * for `connected` on all, lets them sit idle and measures again. The GC is
 * forced through a preload written to a temp dir (nothing is added to the
 * server): it answers an IPC message with `process.memoryUsage()` after
 * `gc()`. Everything started is stopped at the end, also on error/timeout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { adminPutOver, seedCatalog } from '../harness/catalog';
import { TEST_ADMIN_TOKEN, TEST_AUTH_SECRET, userToken } from '../harness/replica';
import { freePort } from '../harness/ports';
import { waitFor } from '../harness/wait';
import { createTestDatabase, type TestDatabase } from '../harness/test-db';
import { readRssKb } from './lib/procstat';

const ROOT = path.resolve(__dirname, '..');
const TRACK_ID = 'mem-track-1';
const USER_ID = 1;
/** Streams being opened at once (the listen backlog is bounded). */
const OPEN_CONCURRENCY = 200;
const IDLE_MS = 3000;
const OVERALL_TIMEOUT_MS = 180_000;
const log = (line: string) => process.stderr.write(`[stream-memory] ${line}\n`);

interface Options {
  streams: number;
  kind: 'track' | 'user';
  logLevel: string;
  /**
   * Writes V8 heap snapshots of the replica here (after the second measurement)
   * and beside it as `*.before.heapsnapshot`; the RSS figures are then meaningless.
   */
  heapSnapshot: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = {
    streams: 5000,
    kind: 'track',
    logLevel: 'info',
    heapSnapshot: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === '--streams' && value) opts.streams = Number(value);
    else if (arg === '--kind' && (value === 'track' || value === 'user')) opts.kind = value;
    else if (arg === '--log-level' && value) opts.logLevel = value;
    else if (arg === '--heap-snapshot' && value) opts.heapSnapshot = path.resolve(value);
    else throw new Error(`unknown or incomplete option ${arg}`);
    i++;
  }
  if (!Number.isInteger(opts.streams) || opts.streams < 1 || opts.streams > 15000) {
    throw new Error('--streams must be an integer between 1 and 15000');
  }
  return opts;
}

/** Preloaded into the replica: `gc()` then `process.memoryUsage()` on request over IPC. */
const PRELOAD = `
process.on('message', (msg) => {
  if (!msg || msg.kind !== 'measure') return;
  global.gc(); global.gc();
  const usage = process.memoryUsage();
  if (msg.snapshot) require('node:v8').writeHeapSnapshot(msg.snapshot);
  process.send({ kind: 'memory', usage });
});
if (process.channel) process.channel.unref();
`;

interface Memory {
  rssKb: number;
  heapUsedKb: number;
  externalKb: number;
  arrayBuffersKb: number;
}

function measure(child: ChildProcess, snapshot?: string): Promise<Memory> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no memory answer within 60 s')), 60_000);
    const onMessage = (msg: { kind?: string; usage?: NodeJS.MemoryUsage }) => {
      if (msg?.kind !== 'memory' || !msg.usage) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve({
        // After the GC, so both numbers describe the same moment.
        rssKb: readRssKb(child.pid!),
        heapUsedKb: msg.usage.heapUsed / 1024,
        externalKb: msg.usage.external / 1024,
        arrayBuffersKb: msg.usage.arrayBuffers / 1024,
      });
    };
    child.on('message', onMessage);
    child.send({ kind: 'measure', snapshot });
  });
}

/** One idle SSE stream on its own socket; resolves once `connected` arrived. */
function openStream(port: number, requestPath: string, token: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let head = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no `connected` within 20 s'));
    }, 20_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error(`closed before connected: ${head.slice(0, 200)}`)));
    socket.on('connect', () =>
      socket.write(
        `GET ${requestPath} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
          `Authorization: Bearer ${token}\r\nAccept: text/event-stream\r\n\r\n`,
      ),
    );
    const onData = (chunk: Buffer) => {
      head += chunk.toString('utf8');
      if (!head.startsWith('HTTP/1.1 200')) {
        if (head.includes('\r\n\r\n')) fail(new Error(`refused: ${head.slice(0, 200)}`));
        return;
      }
      if (!head.includes('event: connected')) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.removeAllListeners('close');
      socket.removeAllListeners('error');
      socket.on('error', () => undefined);
      // Keep reading (heartbeats) without keeping anything.
      socket.on('data', () => undefined);
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

const kb = (n: number) => Math.round(n * 100) / 100;

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const cleanups: (() => Promise<unknown>)[] = [];
  const sockets: net.Socket[] = [];
  let output = '';
  const overall = setTimeout(() => {
    log(`timed out after ${OVERALL_TIMEOUT_MS} ms; stopping`);
    void cleanup().finally(() => process.exit(2));
  }, OVERALL_TIMEOUT_MS);
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const s of sockets) s.destroy();
      for (const fn of cleanups.reverse()) await fn().catch((e: unknown) => log(String(e)));
    })());
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));

  try {
    const db: TestDatabase = await createTestDatabase();
    cleanups.push(() => db.drop());
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-memory-'));
    cleanups.push(async () => fs.rmSync(tmp, { recursive: true, force: true }));
    const preload = path.join(tmp, 'measure-preload.js');
    fs.writeFileSync(preload, PRELOAD);

    const port = await freePort();
    const proc = spawn(
      process.execPath,
      [
        '--expose-gc',
        // The young generation grows to 2 × 16 MB and shrinks at GC's whim, which moved RSS by
        // ±30 MB between runs; held small, RSS tracks what the streams retain.
        '--max-semi-space-size=1',
        '--require',
        'tsx/cjs',
        '--require',
        preload,
        'src/main.ts',
      ],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          NODE_ENV: 'test',
          LOG_LEVEL: opts.logLevel,
          AUTH_SECRET: TEST_AUTH_SECRET,
          ADMIN_TOKEN: TEST_ADMIN_TOKEN,
          HOST: '127.0.0.1',
          PORT: String(port),
          DATABASE_URL: db.url,
          MAX_STREAMS_PER_USER: String(opts.streams + 100),
        },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      },
    );
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    cleanups.push(async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(killer);
    });
    const keep = (d: Buffer) => {
      output = (output + d.toString()).slice(-16_384);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error('replica exited');
        return (await fetch(`${base}/healthz`)).ok;
      },
      { timeoutMs: 30_000, intervalMs: 50, what: 'replica /healthz' },
    );
    log(`replica pid ${proc.pid} on :${port}`);

    await seedCatalog(
      adminPutOver(() => base),
      {
        users: { owner: { id: USER_ID, username: 'memowner', is_creator: true, is_team: false } },
        album: { id: 1, title: 'Memory album', created_by_id: USER_ID },
        tracks: [{ id: TRACK_ID }],
      },
    );
    const token = await userToken(USER_ID);
    const requestPath = opts.kind === 'track' ? `/api/tracks/${TRACK_ID}/events` : '/api/me/events';

    // Warm-up: load and compile the stream path, then close, so the baseline includes the code.
    const warm = await Promise.all(
      Array.from({ length: 50 }, () => openStream(port, requestPath, token)),
    );
    for (const s of warm) s.destroy();
    await waitFor(
      async () => /open_streams\{[^}]*\} 0\b/.test(await (await fetch(`${base}/metrics`)).text()),
      { timeoutMs: 10_000, what: 'warm-up streams closed' },
    ).catch(() => log('warning: could not confirm warm-up streams closed'));
    await new Promise((r) => setTimeout(r, 500));
    const before = await measure(
      proc,
      opts.heapSnapshot && opts.heapSnapshot.replace(/(\.heapsnapshot)?$/, '.before.heapsnapshot'),
    );
    log(`before: rss ${kb(before.rssKb)} KB, heap ${kb(before.heapUsedKb)} KB`);

    const started = Date.now();
    let next = 0;
    const worker = async () => {
      while (next < opts.streams) {
        next++;
        sockets.push(await openStream(port, requestPath, token));
      }
    };
    await Promise.all(Array.from({ length: OPEN_CONCURRENCY }, worker));
    log(`${sockets.length} streams connected in ${Date.now() - started} ms; idle ${IDLE_MS} ms`);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const after = await measure(proc, opts.heapSnapshot);
    log(`after: rss ${kb(after.rssKb)} KB, heap ${kb(after.heapUsedKb)} KB`);
    const alive = sockets.filter((s) => !s.destroyed).length;
    if (alive !== sockets.length) throw new Error(`${sockets.length - alive} streams closed early`);

    const n = sockets.length;
    const result = {
      streams: n,
      kind: opts.kind,
      log_level: opts.logLevel,
      rss_kb_per_stream: kb((after.rssKb - before.rssKb) / n),
      heap_used_kb_per_stream: kb((after.heapUsedKb - before.heapUsedKb) / n),
      external_kb_per_stream: kb((after.externalKb - before.externalKb) / n),
      array_buffers_kb_per_stream: kb((after.arrayBuffersKb - before.arrayBuffersKb) / n),
      rss_kb: { before: before.rssKb, after: after.rssKb },
      heap_used_kb: { before: kb(before.heapUsedKb), after: kb(after.heapUsedKb) },
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } catch (err) {
    log(`failed: ${(err as Error).message}`);
    if (output) log(`replica output (tail):\n${output}`);
    process.exitCode = 1;
  } finally {
    clearTimeout(overall);
    await cleanup();
  }
}

void main();
