import { startRedisServer, type RedisServer } from '../../harness/redis-server';
import { startReplica, type Replica } from '../../harness/replica';
import { createTestDatabase, type TestDatabase } from '../../harness/test-db';

export interface StackOptions {
  /** Replicas started at once, one after the other. */
  replicas: number;
  /** Replica environment on top of DATABASE_URL and REDIS_URL. */
  env: Record<string, string>;
  /** How long a replica may take to answer /healthz (startReplica's default if absent). */
  replicaTimeoutMs?: number;
  /** After SIGTERM at teardown, SIGKILL once this passes. */
  killAfterMs: number;
  /** When this environment variable is set, teardown prints every replica's output. */
  debugVar: string;
}

export interface Stack {
  db: TestDatabase;
  redis: RedisServer;
  /** The environment every replica gets (besides PORT). */
  replicaEnv: Record<string, string>;
  /** Every replica ever started, in start order (stopped ones included). */
  replicas: Replica[];
  /** Starts one more replica (on `port` if given; `env` on top of `replicaEnv`). */
  launch(port?: number, env?: Record<string, string>): Promise<Replica>;
  /** Registers a teardown step that runs before the replicas stop (clients, proxies). */
  beforeReplicasStop(step: () => unknown): void;
  /** Registers a teardown step that runs after the replicas stop, before Redis and the database. */
  afterReplicasStop(step: () => unknown): void;
  /** Runs the steps, stops replicas (SIGTERM, then SIGKILL), Redis, drops the database; idempotent. */
  close(): Promise<void>;
}

/**
 * A fresh PostgreSQL database, a private Redis and `replicas` real server
 * processes on both. Whatever was started is stopped again if a step fails;
 * callers that build more on top close the stack if their own steps fail.
 */
export async function startStack(opts: StackOptions): Promise<Stack> {
  const replicas: Replica[] = [];
  const before: (() => unknown)[] = [];
  const after: (() => unknown)[] = [];
  let db: TestDatabase | undefined;
  let redis: RedisServer | undefined;
  let closing: Promise<void> | undefined;

  const close = () =>
    (closing ??= (async () => {
      const errors: unknown[] = [];
      const run = async (step: () => unknown) => {
        try {
          await step();
        } catch (e) {
          errors.push(e);
        }
      };
      for (const step of before) await run(step);
      // SIGTERM (graceful drain), SIGKILL if it hangs: teardown must not leave a process behind.
      await Promise.all(
        replicas.map(async (r) => {
          if (r.exited) return;
          const timer = setTimeout(() => void r.kill(), opts.killAfterMs);
          await r.stop('SIGTERM').catch((e: unknown) => errors.push(e));
          clearTimeout(timer);
        }),
      );
      if (process.env[opts.debugVar]) {
        for (const r of replicas) process.stderr.write(`--- replica :${r.port}\n${r.output()}\n`);
      }
      for (const step of after) await run(step);
      await redis?.stop().catch((e: unknown) => errors.push(e));
      await db?.drop().catch((e: unknown) => errors.push(e));
      if (errors.length > 0) throw errors[0];
    })());

  try {
    db = await createTestDatabase();
    redis = await startRedisServer();
    const replicaEnv: Record<string, string> = {
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      ...opts.env,
    };
    const launch = async (port?: number, env: Record<string, string> = {}) => {
      const r = await startReplica({
        env: { ...replicaEnv, ...env },
        port,
        timeoutMs: opts.replicaTimeoutMs,
      });
      replicas.push(r);
      return r;
    };
    // One at a time: they would otherwise race through startup on 2 shared cores.
    for (let i = 0; i < opts.replicas; i++) await launch();
    return {
      db,
      redis,
      replicaEnv,
      replicas,
      launch,
      beforeReplicasStop: (step) => before.push(step),
      afterReplicasStop: (step) => after.push(step),
      close,
    };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}
