import { z } from 'zod';

/** Runtime configuration, read from the environment once at start (contract section 6). */
export interface Config {
  nodeEnv: string;
  production: boolean;
  port: number;
  host: string;
  /** PostgreSQL URL; undefined → the embedded database in `dataDir`. */
  databaseUrl: string | undefined;
  dataDir: string;
  /** Run repeated SQL as named prepared statements (off behind a transaction-mode pooler). */
  dbPreparedStatements: boolean;
  /** Redis URL; undefined → the in-process bus. */
  redisUrl: string | undefined;
  authSecret: string | undefined;
  adminToken: string | undefined;
  heartbeatMs: number;
  /** Time for a request's headers and body to arrive (an open stream is not in progress). */
  requestTimeoutMs: number;
  corsOrigins: string[];
  /** Serve the demo page and the demo sign-in (embedded default, or DEMO_PAGE=true); never in production. */
  demoPage: boolean;
  /** SSE `retry:` hint sent at connect. */
  sseRetryMs: number;
  /** How long events stay in the log for resume. */
  eventRetentionMs: number;
  /** How often each replica prunes events older than the retention. */
  eventPruneIntervalMs: number;
  /** A subscriber whose unsent bytes pass this is disconnected. */
  maxSubscriberBufferBytes: number;
  maxStreamsPerUser: number;
  maxStreamsPerReplica: number;
  /** typing rate limit: at most `typingLimit` per `typingWindowMs` per user and track. */
  typingLimit: number;
  typingWindowMs: number;
  typingExpiresMs: number;
  /** Upper bound for graceful shutdown after SIGTERM. */
  shutdownTimeoutMs: number;
  /** Spread the closing of open streams over this long on SIGTERM. */
  drainSpreadMs: number;
  /** Express `trust proxy` setting (e.g. "loopback" behind nginx on the same host). */
  trustProxy: string | undefined;
  logLevel: string;
}

export class ConfigError extends Error {}

/** `HEARTBEAT_MS` when unset: the contract's "a `: ping` at least every 15 s". */
export const DEFAULT_HEARTBEAT_MS = 15_000;

const intFrom = (name: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return def;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `between ${min} and ${max}`;
        ctx.addIssue({ code: 'custom', message: `${name} must be an integer ${range}` });
        return z.NEVER;
      }
      return n;
    });

const boolFrom = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0', ''])
    .optional()
    .transform((v) => (v === undefined || v === '' ? def : v === 'true' || v === '1'));

/** Parses and validates the environment; throws ConfigError with a one-line reason. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const nodeEnv = env.NODE_ENV ?? 'development';
  const production = nodeEnv === 'production';
  const embedded = !env.DATABASE_URL && !env.REDIS_URL;
  const schema = z.object({
    PORT: intFrom('PORT', 3000, 0, 65535),
    HOST: z.string().optional(),
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'DATABASE_URL must be a postgres:// or postgresql:// URL')
      .optional(),
    DATA_DIR: z.string().optional(),
    DB_PREPARED_STATEMENTS: boolFrom(true),
    REDIS_URL: z
      .string()
      .regex(/^rediss?:\/\//, 'REDIS_URL must be a redis:// or rediss:// URL')
      .optional(),
    AUTH_SECRET: z.string().min(16, 'AUTH_SECRET must be at least 16 characters').optional(),
    ADMIN_TOKEN: z.string().min(16, 'ADMIN_TOKEN must be at least 16 characters').optional(),
    HEARTBEAT_MS: intFrom('HEARTBEAT_MS', DEFAULT_HEARTBEAT_MS, 10),
    REQUEST_TIMEOUT_MS: intFrom('REQUEST_TIMEOUT_MS', 10000, 100),
    CORS_ORIGINS: z.string().optional(),
    // The demo signs anyone in as anyone: off in production, where DEMO_PAGE=true is refused below.
    DEMO_PAGE: boolFrom(embedded && !production),
    SSE_RETRY_MS: intFrom('SSE_RETRY_MS', 2000, 0),
    EVENT_RETENTION_MS: intFrom('EVENT_RETENTION_MS', 24 * 3600 * 1000, 1000),
    EVENT_PRUNE_INTERVAL_MS: intFrom('EVENT_PRUNE_INTERVAL_MS', 60_000, 100),
    MAX_SUBSCRIBER_BUFFER_BYTES: intFrom('MAX_SUBSCRIBER_BUFFER_BYTES', 1024 * 1024, 1024),
    MAX_STREAMS_PER_USER: intFrom('MAX_STREAMS_PER_USER', 20, 1),
    MAX_STREAMS_PER_REPLICA: intFrom('MAX_STREAMS_PER_REPLICA', 50000, 1),
    TYPING_LIMIT: intFrom('TYPING_LIMIT', 5, 1),
    TYPING_WINDOW_MS: intFrom('TYPING_WINDOW_MS', 5000, 100),
    TYPING_EXPIRES_MS: intFrom('TYPING_EXPIRES_MS', 5000, 100),
    SHUTDOWN_TIMEOUT_MS: intFrom('SHUTDOWN_TIMEOUT_MS', 10000, 100),
    DRAIN_SPREAD_MS: intFrom('DRAIN_SPREAD_MS', 2000, 0),
    TRUST_PROXY: z.string().optional(),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  });
  const empty = (v: string | undefined) => (v === '' ? undefined : v);
  const raw = Object.fromEntries(Object.keys(schema.shape).map((k) => [k, empty(env[k])]));
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`invalid configuration: ${issue.path.join('.')}: ${issue.message}`);
  }
  const v = parsed.data;
  if (production && !v.AUTH_SECRET)
    throw new ConfigError('AUTH_SECRET is required when NODE_ENV=production');
  if (production && !v.ADMIN_TOKEN)
    throw new ConfigError('ADMIN_TOKEN is required when NODE_ENV=production');
  if (production && v.DEMO_PAGE)
    throw new ConfigError('DEMO_PAGE cannot be on when NODE_ENV=production (its sign-in is open)');
  return {
    nodeEnv,
    production,
    port: v.PORT,
    // The embedded default outside production serves the demo sign-in: this machine only.
    host: v.HOST ?? (embedded && !production ? '127.0.0.1' : '0.0.0.0'),
    databaseUrl: v.DATABASE_URL,
    dataDir: v.DATA_DIR ?? './data',
    dbPreparedStatements: v.DB_PREPARED_STATEMENTS,
    redisUrl: v.REDIS_URL,
    authSecret: v.AUTH_SECRET,
    adminToken: v.ADMIN_TOKEN,
    heartbeatMs: v.HEARTBEAT_MS,
    requestTimeoutMs: v.REQUEST_TIMEOUT_MS,
    corsOrigins: (v.CORS_ORIGINS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    demoPage: v.DEMO_PAGE,
    sseRetryMs: v.SSE_RETRY_MS,
    eventRetentionMs: v.EVENT_RETENTION_MS,
    eventPruneIntervalMs: v.EVENT_PRUNE_INTERVAL_MS,
    maxSubscriberBufferBytes: v.MAX_SUBSCRIBER_BUFFER_BYTES,
    maxStreamsPerUser: v.MAX_STREAMS_PER_USER,
    maxStreamsPerReplica: v.MAX_STREAMS_PER_REPLICA,
    typingLimit: v.TYPING_LIMIT,
    typingWindowMs: v.TYPING_WINDOW_MS,
    typingExpiresMs: v.TYPING_EXPIRES_MS,
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    drainSpreadMs: v.DRAIN_SPREAD_MS,
    trustProxy: v.TRUST_PROXY,
    logLevel: v.LOG_LEVEL ?? (nodeEnv === 'test' ? 'silent' : 'info'),
  };
}
