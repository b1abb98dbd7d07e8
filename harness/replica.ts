import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { signUserToken } from '../src/auth/tokens';
import { freePort } from './ports';
import { waitFor } from './wait';

export const TEST_AUTH_SECRET = 'test-secret-0123456789abcdef';
export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789';

export const userToken = (userId: number, ttlSeconds = 3600): Promise<string> =>
  signUserToken(TEST_AUTH_SECRET, userId, ttlSeconds);

export const adminHeaders = { Authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

export interface Replica {
  url: string;
  port: number;
  pid: number;
  process: ChildProcess;
  /** Sends `signal` (default SIGTERM) and waits for exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** SIGKILL, waits for exit. */
  kill(): Promise<void>;
  /** Everything the process printed so far (stdout + stderr). */
  output(): string;
  exited: boolean;
}

const ROOT = path.resolve(__dirname, '..');
const live = new Set<Replica>();

/**
 * Starts the real server (`src/main.ts` under tsx) as a child process and
 * resolves once /healthz answers. The child is killed if the test process exits.
 */
export async function startReplica(opts: {
  env: Record<string, string | undefined>;
  port?: number;
  timeoutMs?: number;
}): Promise<Replica> {
  const port = opts.port ?? (await freePort());
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    AUTH_SECRET: TEST_AUTH_SECRET,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    HOST: '127.0.0.1',
    PORT: String(port),
    ...opts.env,
  })) {
    if (v !== undefined) env[k] = v;
  }
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', 'src/main.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exitPromise = new Promise<number | null>((resolve) =>
    child.on('exit', (code, signal) => {
      replica.exited = true;
      live.delete(replica);
      resolve(code ?? (signal ? 128 : null));
    }),
  );
  const replica: Replica = {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    process: child,
    exited: false,
    output: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (!replica.exited) child.kill(signal);
      return exitPromise;
    },
    async kill() {
      if (!replica.exited) child.kill('SIGKILL');
      await exitPromise;
    },
  };
  live.add(replica);
  try {
    await waitFor(
      async () => {
        const res = await fetch(`${replica.url}/healthz`);
        return res.ok;
      },
      {
        timeoutMs: opts.timeoutMs ?? 30000,
        intervalMs: 50,
        what: `replica on :${port}`,
        failIf: () => replica.exited && 'the process exited',
      },
    );
  } catch (err) {
    await replica.kill();
    throw new Error(`replica failed to start: ${(err as Error).message}\n${out}`, { cause: err });
  }
  return replica;
}

process.on('exit', () => {
  for (const r of live) r.process.kill('SIGKILL');
});
