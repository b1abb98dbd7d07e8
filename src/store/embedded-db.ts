import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * The embedded database: PGlite (PostgreSQL in WASM) keeping its files under
 * `<dataDir>/pglite`, served on a loopback port by pglite-socket so the app keeps its one
 * Prisma + @prisma/adapter-pg code path.
 *
 * PGlite and its socket server run in a worker thread: queries execute synchronously in WASM,
 * and on the main thread they would stall the event loop (SSE fan-out, heartbeats) for as long
 * as each query runs. It also keeps PGlite out of jest's VM sandbox (its start-up `import()`
 * of node built-ins fails there without --experimental-vm-modules).
 *
 * Connections: pglite-socket multiplexes every client onto PGlite's single session. Its queue
 * keeps an open transaction on its own connection, but outside a transaction it interleaves
 * protocol messages of different connections whenever a message spans TCP chunks (measured:
 * a 2 MB parameterised INSERT on one connection and small queries on another fail with "bind
 * message supplies 2 parameters, but prepared statement "" requires 1"). So it serves exactly
 * one client connection at a time: a second one waits up to CONNECT_WAIT_MS for the first to
 * close, then is refused (SQLSTATE 53300, like "too many clients"). Size the pg pool with
 * `maxConnections` (or spread `poolConfig`). Each connection starts on a fresh session
 * (DISCARD ALL), as it would on PostgreSQL.
 */

export interface EmbeddedDatabaseOptions {
  dataDir: string;
  /** Default 127.0.0.1 (loopback only: the server has no authentication). */
  host?: string;
  /** Default 0: a free port chosen by the OS. */
  port?: number;
  /** Called if the database stops without stop() (the worker thread crashed). */
  onUnexpectedExit?: (error: Error) => void;
}

export interface EmbeddedDatabase {
  /** postgresql:// URL of the served database (no password; sslmode=disable). */
  connectionString: string;
  /** Client connections the server accepts at once (1). Size the pg pool with it. */
  maxConnections: number;
  /** pg pool settings to spread into `new PrismaPg({ connectionString, ...poolConfig })`. */
  poolConfig: { max: number; idleTimeoutMillis: number };
  /** Absolute path of the PGlite files. */
  databaseDir: string;
  /** Closes the server and shuts PGlite down cleanly, then releases the data directory. */
  stop(): Promise<void>;
}

/** Another live process (or this one) already uses the data directory. */
export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
}

const MAX_CONNECTIONS = 1;
const LOCK_FILE = 'embedded-db.lock';
const DATABASE_SUBDIR = 'pglite';
const STOP_TIMEOUT_MS = 30_000;
/** How long a new connection waits for the one slot before it is refused. */
const CONNECT_WAIT_MS = 5_000;

type WorkerReply = { type: 'ready'; port: number } | { type: 'stopped' } | WorkerFailure;
type WorkerFailure = { type: 'failed' | 'stop-failed'; message: string };

// Plain CommonJS run by the worker (eval: no build step or TS loader needed in the thread).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const load = require('node:module').createRequire(workerData.resolveFrom);
const { PGlite } = load('@electric-sql/pglite');
const { PGLiteSocketServer } = load('@electric-sql/pglite-socket');
const describe = (e) => (e && e.message) || String(e);
let db;
let server;

// pglite-socket refuses a connection while it still counts one that is closing: its handler
// set (and node's server.maxConnections) drop a socket only a tick after it closed. A pool
// replacing its connection, or a client opened right after another closed, then fails with
// ECONNRESET (measured: 56 of 300 queries with a 3 ms pool idle timeout). A new connection
// instead waits briefly for the slot; one still refused after that is a real second client.
// Refusing is done here too: pglite-socket's own refusal end()s a socket it never reads, so
// the socket never closes and server.close() (stop) waits for it forever.
// (Uses fields of pglite-socket 0.1.6, pinned exactly; without them it keeps the base behaviour.)
function errorResponse(code, message) {
  const fields = Buffer.from(
    'SFATAL\\0VFATAL\\0C' + code + '\\0M' + message + '\\0\\0',
    'utf8',
  );
  const head = Buffer.alloc(5);
  head.write('E', 0);
  head.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([head, fields]);
}

function refuse(socket, code, message) {
  socket.on('error', () => {});
  socket.resume(); // read to EOF so the socket can close
  socket.end(errorResponse(code, message));
  setTimeout(() => socket.destroy(), 2000).unref();
}

// Every connection shares PGlite's one session, so what a closed connection left in it would
// reach the next one: above all its named prepared statements. pg's pool replaces a connection
// after any failed statement, and the new one re-prepares the same names (tc_0 ...): with the
// old ones still there each Parse fails with 42P05 "already exists", which replaces the
// connection again, for ever. So each connection starts on a fresh session, as on PostgreSQL:
// once the previous one's last query is done, its transaction is undone (pglite-socket does
// this too, but a tick after the slot frees) and DISCARD ALL drops its prepared statements,
// settings, temporary tables and advisory locks.
async function freshSession() {
  await db.runExclusive(async () => undefined);
  if (db.isInTransaction()) await db.exec('ROLLBACK');
  await db.exec('DISCARD ALL');
}

class PatientSocketServer extends PGLiteSocketServer {
  // A connection whose session is being reset holds the slot until its handler is added.
  resetting = 0;
  async start() {
    await super.start();
    if (this.server) this.server.maxConnections = workerData.maxConnections + 16;
  }
  async handleConnection(socket) {
    if (!(this.handlers instanceof Set)) return super.handleConnection(socket);
    const deadline = Date.now() + workerData.connectWaitMs;
    const busy = () => this.handlers.size + this.resetting >= this.maxConnections;
    while (this.active && busy() && !socket.destroyed) {
      if (Date.now() >= deadline) {
        return refuse(socket, '53300', 'the embedded database serves one connection at a time');
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    if (!this.active) return refuse(socket, '57P01', 'the embedded database is shutting down');
    if (socket.destroyed) return;
    this.resetting++;
    try {
      await freshSession();
    } catch (e) {
      return refuse(socket, '57P03', 'the embedded database could not reset its session: ' + describe(e));
    } finally {
      this.resetting--;
    }
    if (!this.active) return refuse(socket, '57P01', 'the embedded database is shutting down');
    if (socket.destroyed) return;
    // Synchronously up to adding the handler: no other connection can take the slot meanwhile.
    return super.handleConnection(socket);
  }
}

async function start() {
  db = await PGlite.create(workerData.databaseDir);
  server = new PatientSocketServer({
    db,
    host: workerData.host,
    port: workerData.port,
    maxConnections: workerData.maxConnections,
  });
  // start() never settles when listen fails (it rejects only while inactive, and it sets
  // itself active first), so its error event is awaited as well.
  await new Promise((resolve, reject) => {
    server.addEventListener('error', (event) => reject(event.detail), { once: true });
    server.start().then(resolve, reject);
  });
  parentPort.postMessage({ type: 'ready', port: Number(server.getServerConn().split(':').pop()) });
}

async function stop() {
  await server.stop();
  // Let an in-flight query finish and undo a transaction a client left open, so the
  // shutdown checkpoint writes a consistent database.
  await db.runExclusive(async () => undefined);
  if (db.isInTransaction()) await db.exec('ROLLBACK');
  await db.close();
}

parentPort.on('message', (message) => {
  if (message.type !== 'stop') return;
  stop().then(
    () => parentPort.postMessage({ type: 'stopped' }),
    (e) => parentPort.postMessage({ type: 'stop-failed', message: describe(e) }),
  ).finally(() => parentPort.close());
});

start().catch(async (e) => {
  try { if (server) await server.stop(); if (db) await db.close(); } catch {}
  parentPort.postMessage({ type: 'failed', message: describe(e) });
  parentPort.close();
});
`;

export async function startEmbeddedDatabase(
  opts: EmbeddedDatabaseOptions,
): Promise<EmbeddedDatabase> {
  const dataDir = path.resolve(opts.dataDir);
  const host = opts.host ?? '127.0.0.1';
  fs.mkdirSync(dataDir, { recursive: true });
  const lock = acquireDataDirLock(dataDir);
  const databaseDir = path.join(dataDir, DATABASE_SUBDIR);

  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      databaseDir,
      host,
      port: opts.port ?? 0,
      maxConnections: MAX_CONNECTIONS,
      connectWaitMs: CONNECT_WAIT_MS,
      resolveFrom: __filename,
    },
  });
  let state: 'starting' | 'running' | 'stopping' | 'gone' = 'starting';
  const replies: ((reply: WorkerReply) => void)[] = [];
  worker.on('message', (reply: WorkerReply) => replies.shift()?.(reply));
  const nextReply = () => new Promise<WorkerReply>((resolve) => replies.push(resolve));

  // The worker is gone: whatever was waiting for a reply fails; the data directory is free.
  const exited = new Promise<Error>((resolve) => {
    let crash: Error | undefined;
    worker.on('error', (error) => (crash = error));
    worker.on('exit', (code) => {
      const error = crash ?? new Error(`embedded database worker exited with code ${code}`);
      const wasRunning = state === 'running';
      state = 'gone';
      lock.release();
      resolve(error);
      if (wasRunning) opts.onUnexpectedExit?.(error);
    });
  });

  const first = await Promise.race([nextReply(), exited]);
  if (first instanceof Error || first.type !== 'ready') {
    await exited;
    const reason = first instanceof Error ? first.message : 'message' in first ? first.message : '';
    throw new Error(`embedded database in ${databaseDir} failed to start: ${reason}`);
  }
  state = 'running';

  const urlHost = host.includes(':') ? `[${host}]` : host;
  const connectionString = `postgresql://postgres@${urlHost}:${first.port}/postgres?sslmode=disable`;

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (state !== 'running') return;
      state = 'stopping';
      worker.postMessage({ type: 'stop' });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS);
      });
      const reply = await Promise.race([nextReply(), exited, timeout]);
      clearTimeout(timer);
      if (reply === 'timeout') await worker.terminate();
      await exited;
      if (reply === 'timeout') {
        throw new Error(`embedded database did not stop within ${STOP_TIMEOUT_MS} ms; terminated`);
      }
      if (reply instanceof Error) throw reply;
      if (reply.type === 'stop-failed') {
        throw new Error(`embedded database did not stop cleanly: ${reply.message}`);
      }
    })();
    return stopping;
  };

  return {
    connectionString,
    maxConnections: MAX_CONNECTIONS,
    poolConfig: { max: MAX_CONNECTIONS, idleTimeoutMillis: 0 },
    databaseDir,
    stop,
  };
}

// ---------------------------------------------------------------------------------------------
// One process per data directory: two processes opening the same PGlite files corrupt them.

interface LockRecord {
  pid: number;
  /** Unique per acquisition: tells this process's own live locks from a stale one with our pid. */
  token: string;
  /** Linux process start time (clock ticks since boot), to notice a pid reused by another process. */
  startTicks?: number;
  host?: string;
}

/** Tokens of the locks this process holds right now. */
const heldTokens = new Set<string>();

function procStartTicks(pid: number | 'self'): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)", which may itself contain spaces; starttime is field 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

function readLock(file: string): LockRecord | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as Partial<LockRecord>;
    if (typeof parsed.pid === 'number') return { token: '', ...parsed, pid: parsed.pid };
  } catch {
    // A lock written by hand or by an older version: just a pid.
  }
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? { pid, token: '' } : { pid: 0, token: '' };
}

function holderIsAlive(holder: LockRecord): boolean {
  if (heldTokens.has(holder.token)) return true;
  // Our own pid but not a lock we hold: left by an earlier process that had the same pid
  // (common in containers, where the app is often pid 1 on every start).
  if (holder.pid === process.pid || holder.pid <= 0) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (holder.startTicks !== undefined) {
    const ticks = procStartTicks(holder.pid);
    if (ticks !== undefined && ticks !== holder.startTicks) return false;
  }
  return true;
}

function acquireDataDirLock(dataDir: string): { release(): void } {
  const file = path.join(dataDir, LOCK_FILE);
  const record: LockRecord = {
    pid: process.pid,
    token: randomUUID(),
    startTicks: procStartTicks('self'),
    host: os.hostname(),
  };
  // Written aside and hard-linked into place: the lock file appears atomically and complete,
  // so no reader ever sees a half-written one and takes it for stale.
  const pending = `${file}.${record.token}`;
  fs.writeFileSync(pending, JSON.stringify(record) + '\n');
  try {
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        fs.linkSync(pending, file);
        heldTokens.add(record.token);
        let released = false;
        return {
          release() {
            if (released) return;
            released = true;
            heldTokens.delete(record.token);
            if (readLock(file)?.token === record.token) fs.rmSync(file, { force: true });
          },
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = readLock(file);
      if (!holder) continue; // released meanwhile
      if (holderIsAlive(holder)) {
        const who = holder.pid === process.pid ? 'this process' : `process ${holder.pid}`;
        throw new DataDirLockedError(
          `data directory ${dataDir} is already in use by ${who} (lock file ${file}); ` +
            'only one process may open the embedded database',
        );
      }
      takeOverStaleLock(file, holder);
    }
    throw new DataDirLockedError(`could not lock data directory ${dataDir} (lock file ${file})`);
  } finally {
    fs.rmSync(pending, { force: true });
  }
}

/** Moves a stale lock aside; if a contender replaced it meanwhile, puts that one back. */
function takeOverStaleLock(file: string, stale: LockRecord): void {
  const aside = `${file}.stale-${randomUUID()}`;
  try {
    fs.renameSync(file, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const moved = readLock(aside);
  if (moved && (moved.token !== stale.token || moved.pid !== stale.pid)) {
    try {
      fs.linkSync(aside, file);
    } catch {
      // Someone else holds it now; the next attempt will see that.
    }
  }
  fs.rmSync(aside, { force: true });
}
