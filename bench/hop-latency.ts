/**
 * `npx tsx bench/hop-latency.ts [--requests N] [--gaps 0,50]`: what one round trip to each
 * process a comment passes costs on this machine, back to back and paced (a gap of idle time
 * before each request, as at the bench's floor of 20 comments/s).
 *
 * The floor's latency is a sum of such hops: on a VM an idle vCPU wakes slowly, so the same
 * round trip costs several times more when the machine idles between requests. This prints,
 * per hop and gap, the p50/p90 of N sequential requests, and for the replica's requests its
 * CPU per request (utime + stime from /proc, all threads):
 *   - TCP echo and a bare Node HTTP server, in a child process (the floor of any hop);
 *   - Redis PING; PostgreSQL `SELECT 1` and a one-row upsert with its commit;
 *   - one replica of ours (PostgreSQL, private Redis): `GET /healthz` and the comment POST.
 * Everything it starts is stopped at the end, also on error.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import Redis from 'ioredis';
import { Client } from 'pg';
import { freePort } from '../harness/ports';
import { startRedisServer, type RedisServer } from '../harness/redis-server';
import { startReplica, TEST_ADMIN_TOKEN, TEST_AUTH_SECRET, type Replica } from '../harness/replica';
import { createTestDatabase, type TestDatabase } from '../harness/test-db';
import { nowMs, sleep } from './lib/clock';
import { readCpuMs } from './lib/procstat';
import { seedCatalog } from './lib/seed';
import { round, summarize } from './lib/stats';
import { alignedColumns } from './lib/table';

const log = (line: string) => process.stderr.write(`[hop-latency] ${line}\n`);

interface Options {
  requests: number;
  gapsMs: number[];
}

function parseOptions(argv: string[]): Options {
  const opts: Options = { requests: 200, gapsMs: [0, 50] };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (argv[i] === '--requests' && value) {
      opts.requests = Number(value);
      i++;
    } else if (argv[i] === '--gaps' && value) {
      opts.gapsMs = value.split(',').map(Number);
      i++;
    } else {
      throw new Error(`unknown option ${argv[i]}; usage: --requests N --gaps 0,50`);
    }
  }
  if (!(Number.isInteger(opts.requests) && opts.requests > 0))
    throw new Error('--requests must be a positive integer');
  if (opts.gapsMs.some((g) => !(Number.isFinite(g) && g >= 0)))
    throw new Error('--gaps must be milliseconds ≥ 0, comma separated');
  return opts;
}

interface Hop {
  name: string;
  run: (i: number) => Promise<void>;
  /** The process whose CPU per request is reported (ours). */
  pid?: number;
}

export interface HopResult {
  hop: string;
  gap_ms: number;
  p50_ms: number;
  p90_ms: number;
  cpu_us_per_request: number | null;
}

/** One keep-alive connection, one request at a time; resolves with the status. */
function httpClient(port: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const request = (method: string, path: string, headers: http.OutgoingHttpHeaders, body = '') =>
    new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body);
    });
  return { request, close: () => agent.destroy() };
}

/** A bare Node HTTP server and a TCP echo server in a child process (another process to wake). */
async function startPeers(): Promise<{ httpPort: number; echoPort: number; stop(): void }> {
  const [httpPort, echoPort] = [await freePort(), await freePort()];
  const source =
    `require('http').createServer((q, s) => s.end('ok')).listen(${httpPort}, '127.0.0.1');` +
    `require('net').createServer((c) => c.on('data', (d) => c.write(d))).listen(${echoPort}, '127.0.0.1', () => process.send('up'));`;
  const child = spawn(process.execPath, ['-e', source], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`peer servers exited (${code})`)));
  });
  return { httpPort, echoPort, stop: () => void child.kill() };
}

async function measure(hop: Hop, requests: number, gapMs: number): Promise<HopResult> {
  const times: number[] = [];
  const cpuBefore = hop.pid ? readCpuMs(hop.pid) : 0;
  for (let i = 0; i < requests; i++) {
    if (gapMs > 0) await sleep(gapMs);
    const start = nowMs();
    await hop.run(i);
    times.push(nowMs() - start);
  }
  const s = summarize(times);
  return {
    hop: hop.name,
    gap_ms: gapMs,
    p50_ms: round(s.p50, 3),
    p90_ms: round(s.p90, 3),
    cpu_us_per_request: hop.pid
      ? round(((readCpuMs(hop.pid) - cpuBefore) * 1000) / requests, 0)
      : null,
  };
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const stops: (() => Promise<unknown> | void)[] = [];
  try {
    const db: TestDatabase = await createTestDatabase();
    stops.push(() => db.drop());
    const redis: RedisServer = await startRedisServer();
    stops.push(() => redis.stop());
    const peers = await startPeers();
    stops.push(() => peers.stop());
    const replica: Replica = await startReplica({
      env: {
        NODE_ENV: 'production',
        LOG_LEVEL: 'warn',
        DATABASE_URL: db.url,
        REDIS_URL: redis.url,
        AUTH_SECRET: TEST_AUTH_SECRET,
        ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      },
      timeoutMs: 60_000,
    });
    stops.push(() => replica.stop());
    const [token] = await seedCatalog(replica.url, [1000], ['hop-track'], 1);

    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    stops.push(() => pg.end());
    const redisClient = new Redis(redis.url);
    stops.push(() => redisClient.disconnect());
    const echo = net.connect(peers.echoPort, '127.0.0.1');
    echo.setNoDelay(true);
    await new Promise((resolve) => echo.once('connect', resolve));
    stops.push(() => void echo.destroy());
    const bare = httpClient(peers.httpPort);
    const ours = httpClient(replica.port);
    stops.push(
      () => bare.close(),
      () => ours.close(),
    );
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

    const requireStatus = (want: number) => (status: number) => {
      if (status !== want) throw new Error(`expected ${want}, got ${status}`);
    };
    const hops: Hop[] = [
      {
        name: 'TCP echo (node)',
        run: () =>
          new Promise<void>((resolve) => {
            echo.once('data', () => resolve());
            echo.write('x');
          }),
      },
      {
        name: 'HTTP GET, bare node',
        run: () => bare.request('GET', '/', {}).then(requireStatus(200)),
      },
      { name: 'Redis PING', run: () => redisClient.ping().then(() => undefined) },
      { name: 'PostgreSQL SELECT 1', run: () => pg.query('SELECT 1').then(() => undefined) },
      {
        name: 'PostgreSQL upsert + commit',
        run: () =>
          pg
            .query(
              `INSERT INTO stream_heads (stream, last_seq) VALUES ('hop-probe', 1)
               ON CONFLICT (stream) DO UPDATE SET last_seq = stream_heads.last_seq + 1`,
            )
            .then(() => undefined),
      },
      {
        name: 'ours: GET /healthz',
        pid: replica.pid,
        run: () => ours.request('GET', '/healthz', {}).then(requireStatus(200)),
      },
      {
        name: 'ours: POST comment',
        pid: replica.pid,
        run: (i) =>
          ours
            .request(
              'POST',
              '/api/tracks/hop-track/comments',
              auth,
              JSON.stringify({ content: `hop ${i}`, timestamp: 1 }),
            )
            .then(requireStatus(201)),
      },
    ];
    // Warm every path (JIT, connections, prepared statements) before measuring.
    for (const hop of hops) for (let i = 0; i < 50; i++) await hop.run(i);

    const results: HopResult[] = [];
    for (const gap of opts.gapsMs) {
      log(`${opts.requests} requests per hop, ${gap} ms idle before each`);
      for (const hop of hops) results.push(await measure(hop, opts.requests, gap));
    }
    printTable(results, opts.gapsMs);
    console.log(JSON.stringify({ requests: opts.requests, results }));
  } finally {
    for (const stop of stops.reverse()) await Promise.resolve(stop()).catch(() => undefined);
  }
}

function printTable(results: HopResult[], gaps: number[]): void {
  // The replica's CPU per request includes what it spends idle during the gap (its timers).
  const head = ['hop', ...gaps.map((g) => `p50/p90 ms, gap ${g} ms`), 'replica CPU µs/request'];
  const rows = [head];
  for (const hop of new Set(results.map((r) => r.hop))) {
    const of = results.filter((r) => r.hop === hop);
    const cpu = of.map((r) => r.cpu_us_per_request).filter((c) => c !== null);
    rows.push([
      hop,
      ...of.map((r) => `${r.p50_ms} / ${r.p90_ms}`),
      cpu.length ? cpu.join(' / ') : '',
    ]);
  }
  console.log(alignedColumns(rows, 'end'));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
