import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import { Client, Pool } from 'pg';
import { PrismaClient } from '../src/generated/prisma/client';
import {
  DataDirLockedError,
  startEmbeddedDatabase,
  type EmbeddedDatabase,
} from '../src/store/embedded-db';
import { runMigrations } from '../src/store/migrate';
import { runMigrateCli } from './support/migrate-cli';

/** Every migration of prisma/migrations, in the order they apply. */
const MIGRATIONS = fs
  .readdirSync(path.join(__dirname, '..', 'prisma', 'migrations'))
  .filter((name) => /^\d+_/.test(name))
  .sort();

// PGlite's first start runs initdb (several seconds on a busy machine).
jest.setTimeout(180_000);

let root: string;
/** Shared by the tests that do not need a fresh directory, to pay for initdb once. */
let dataDir: string;
const running: EmbeddedDatabase[] = [];

async function start(dir: string): Promise<EmbeddedDatabase> {
  const db = await startEmbeddedDatabase({ dataDir: dir });
  running.push(db);
  return db;
}

function prismaFor(db: EmbeddedDatabase): PrismaClient {
  return new PrismaClient({
    adapter: new PrismaPg({ connectionString: db.connectionString, ...db.poolConfig }),
    // With one connection, interactive transactions queue for it; Prisma's default wait for a
    // connection (2 s) is too short when many are started at once on a busy machine.
    transactionOptions: { maxWait: 60_000, timeout: 60_000 },
  });
}

const runCli = (env: Record<string, string | undefined>) => runMigrateCli(env, 150_000);

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tc-embedded-'));
  dataDir = path.join(root, 'data');
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((db) => db.stop()));
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

test('committed data survives a stop and a restart, an open transaction does not', async () => {
  const first = await start(dataDir);
  expect(first.maxConnections).toBe(1);
  expect(first.connectionString).toMatch(/^postgresql:\/\/postgres@127\.0\.0\.1:\d+\/postgres/);
  expect(await runMigrations({ connectionString: first.connectionString })).toEqual({
    applied: MIGRATIONS,
    warnings: [],
  });
  const prisma = prismaFor(first);
  try {
    await prisma.user.create({ data: { id: 7, username: 'persisted' } });
  } finally {
    await prisma.$disconnect();
  }
  // A client still inside a transaction when the database stops: stop() rolls it back.
  const pending = new Client({ connectionString: first.connectionString });
  pending.on('error', () => undefined);
  await pending.connect();
  await pending.query('BEGIN');
  await pending.query(`INSERT INTO users (id, username) VALUES (8, 'uncommitted')`);
  await first.stop();
  await pending.end().catch(() => undefined);

  const second = await start(dataDir);
  expect(await runMigrations({ connectionString: second.connectionString })).toEqual({
    applied: [],
    warnings: [],
  });
  const again = prismaFor(second);
  try {
    expect(await again.user.findUnique({ where: { id: 7 } })).toMatchObject({
      username: 'persisted',
    });
  } finally {
    await again.$disconnect();
  }
});

test('a second start on a data directory in use is refused, in this process and in another', async () => {
  const first = await start(dataDir);
  const lockFile = path.join(dataDir, 'embedded-db.lock');
  expect(JSON.parse(fs.readFileSync(lockFile, 'utf8'))).toMatchObject({ pid: process.pid });

  const inProcess = startEmbeddedDatabase({ dataDir });
  await expect(inProcess).rejects.toThrow(DataDirLockedError);
  await expect(inProcess).rejects.toThrow(
    `data directory ${dataDir} is already in use by this process (lock file ${lockFile}); only one process may open the embedded database`,
  );

  const other = await runCli({ DATABASE_URL: undefined, DATA_DIR: dataDir });
  expect(other.code).toBe(1);
  expect(other.stderr).toBe(
    `db:migrate failed: data directory ${dataDir} is already in use by process ${process.pid} ` +
      `(lock file ${lockFile}); only one process may open the embedded database\n`,
  );

  // The refused attempts left the running database and its lock alone.
  const client = new Client({ connectionString: first.connectionString });
  await client.connect();
  try {
    expect((await client.query('SELECT count(*)::int AS n FROM users')).rows[0]).toEqual({ n: 1 });
  } finally {
    await client.end();
  }
  await first.stop();
  expect(fs.existsSync(lockFile)).toBe(false);
});

test('a busy port fails the start with a clear error and frees the data directory', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    await expect(startEmbeddedDatabase({ dataDir, port })).rejects.toThrow(
      `embedded database in ${path.join(dataDir, 'pglite')} failed to start: listen EADDRINUSE: address already in use 127.0.0.1:${port}`,
    );
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
  }
  expect(fs.existsSync(path.join(dataDir, 'embedded-db.lock'))).toBe(false);
});

test('a lock left by a process that died is taken over', async () => {
  const dead = spawn(process.execPath, ['-e', '']);
  const deadPid = dead.pid!;
  await new Promise((resolve) => dead.once('exit', resolve));
  const lockFile = path.join(dataDir, 'embedded-db.lock');
  fs.writeFileSync(lockFile, JSON.stringify({ pid: deadPid, token: 'left-behind' }));

  const db = await start(dataDir);
  expect(JSON.parse(fs.readFileSync(lockFile, 'utf8'))).toMatchObject({ pid: process.pid });
  await db.stop();
  expect(fs.existsSync(lockFile)).toBe(false);
});

test('a pool of one connection serves concurrent Prisma interactive transactions and queries', async () => {
  const db = await start(dataDir);
  await runMigrations({ connectionString: db.connectionString });
  const prisma = prismaFor(db);
  try {
    const usersBefore = await prisma.user.count();
    await prisma.streamHead.create({ data: { stream: 'track:pool' } });
    // Read-modify-write in interactive transactions: any interleaving would lose increments.
    const increments = Array.from({ length: 20 }, () =>
      prisma.$transaction(async (tx) => {
        const head = await tx.streamHead.findUniqueOrThrow({ where: { stream: 'track:pool' } });
        await tx.streamHead.update({
          where: { stream: 'track:pool' },
          data: { lastSeq: head.lastSeq + 1n },
        });
      }),
    );
    const reads = Array.from({ length: 10 }, async () =>
      expect(await prisma.user.count()).toBe(usersBefore),
    );
    const failing = prisma.$transaction(async (tx) => {
      await tx.user.create({ data: { id: 99, username: 'rolled-back' } });
      throw new Error('abort this transaction');
    });
    await expect(failing).rejects.toThrow('abort this transaction');
    await Promise.all([...increments, ...reads]);

    const head = await prisma.streamHead.findUniqueOrThrow({ where: { stream: 'track:pool' } });
    expect(head.lastSeq).toBe(20n);
    expect(await prisma.user.findUnique({ where: { id: 99 } })).toBeNull();

    // maxConnections is what the server enforces: with the pool's connection open, another
    // waits for the slot, then is refused.
    const extra = new Client({ connectionString: db.connectionString });
    extra.on('error', () => undefined);
    await expect(extra.connect()).rejects.toMatchObject({
      code: '53300',
      message: 'the embedded database serves one connection at a time',
    });
    await extra.end().catch(() => undefined);
    expect(await prisma.user.count()).toBe(usersBefore);
  } finally {
    await prisma.$disconnect();
  }
});

/** A PostgreSQL protocol 3.0 StartupMessage. */
function startupMessage(user: string): Buffer {
  const body = Buffer.from(`user\0${user}\0database\0postgres\0\0`);
  const head = Buffer.alloc(8);
  head.writeInt32BE(body.length + 8, 0);
  head.writeInt32BE(196608, 4);
  return Buffer.concat([head, body]);
}

test('stop() closes the connection in use and refuses one waiting for the slot', async () => {
  const db = await start(dataDir);
  const holder = new Client({ connectionString: db.connectionString });
  holder.on('error', () => undefined);
  await holder.connect();
  const waiter = net.connect(Number(new URL(db.connectionString).port), '127.0.0.1');
  const received: Buffer[] = [];
  waiter.on('data', (chunk) => received.push(chunk));
  waiter.on('error', () => undefined);
  const waiterClosed = once(waiter, 'close');
  try {
    await once(waiter, 'connect');
    waiter.write(startupMessage('postgres'));
    // The server took up the waiting connection before the holder's later query.
    await holder.query('SELECT 1');
    await db.stop();
    await waiterClosed;
    expect(Buffer.concat(received).toString()).toContain('57P01');
    await expect(holder.query('SELECT 1')).rejects.toThrow();
  } finally {
    waiter.destroy();
    await holder.end().catch(() => undefined);
  }
});

test('a pool that keeps replacing its one connection is served without errors', async () => {
  const db = await start(dataDir);
  // A 2 ms idle timeout makes the pool close its connection between queries and open a new
  // one, racing the server's release of the old one.
  const pool = new Pool({ connectionString: db.connectionString, max: 1, idleTimeoutMillis: 2 });
  pool.on('error', () => undefined);
  let failures = 0;
  let reconnects = 0;
  pool.on('connect', () => reconnects++);
  try {
    for (let i = 0; i < 100; i++) {
      await pool.query('SELECT 1').catch(() => failures++);
      await new Promise((resolve) => setTimeout(resolve, i % 5));
    }
  } finally {
    await pool.end();
  }
  expect(reconnects).toBeGreaterThan(20);
  expect(failures).toBe(0);
});

test('the CLI with DATABASE_URL unset migrates the embedded database in DATA_DIR', async () => {
  const cliDataDir = path.join(root, 'cli-data');
  const first = await runCli({ DATABASE_URL: undefined, DATA_DIR: cliDataDir });
  expect(first).toEqual({
    code: 0,
    stdout: `embedded database in ${path.join(cliDataDir, 'pglite')}: applied ${MIGRATIONS.length} migration(s): ${MIGRATIONS.join(', ')}\n`,
    stderr: '',
  });
  const second = await runCli({ DATABASE_URL: '', DATA_DIR: cliDataDir });
  expect(second.code).toBe(0);
  expect(second.stdout).toMatch(/no pending migrations/);

  const db = await start(cliDataDir);
  const client = new Client({ connectionString: db.connectionString });
  await client.connect();
  try {
    const { rows } = await client.query<{ migration_name: string }>(
      'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL ORDER BY 1',
    );
    expect(rows).toEqual(MIGRATIONS.map((migration_name) => ({ migration_name })));
  } finally {
    await client.end();
  }
});
