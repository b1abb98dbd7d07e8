import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { Redis } from 'ioredis';
import type { Express } from 'express';
import type { Config } from './config/config';
import { buildApp, responseHeaderSteps } from './app';
import { Metrics } from './metrics/metrics';
import { createDatabase } from './store/prisma';
import { CatalogStore } from './store/catalog-store';
import { CommentStore } from './store/comment-store';
import { PrismaEventLog } from './store/event-log';
import { runMigrations } from './store/migrate';
import { startEmbeddedDatabase } from './store/embedded-db';
import { DEMO_USERS, seedDemoData } from './store/demo-seed';
import { CommentService } from './domain/comment-service';
import { AdminAuthenticator, UserAuthenticator } from './auth/authenticate';
import { signUserToken } from './auth/tokens';
import { MemoryBus } from './bus/memory-bus';
import { RedisBus } from './bus/redis-bus';
import type { Bus } from './bus/types';
import { StreamHub } from './streams/hub';
import { OutboxRelay } from './outbox/relay';
import { createDemoRouter, demoNotServed } from './http/demo-routes';
import { requestListener } from './http/entry';
import { createLogger } from './http/logging';
import { answerClientError } from './http/client-errors';

/** The secrets the service runs with, and which of them it made itself (those alone may be shown). */
interface ServiceSecrets {
  authSecret: string;
  adminToken: string;
  generated: { authSecret: boolean; adminToken: boolean };
}

/**
 * Secrets for a non-production run without AUTH_SECRET/ADMIN_TOKEN: made once and kept beside
 * the embedded database, so demo tokens survive a restart. Only generated values go to the
 * file: a secret the operator set is never copied anywhere.
 */
function devSecrets(config: Config, logger: Logger): ServiceSecrets {
  const generated = { authSecret: !config.authSecret, adminToken: !config.adminToken };
  if (config.authSecret && config.adminToken) {
    return { authSecret: config.authSecret, adminToken: config.adminToken, generated };
  }
  const file = path.join(config.dataDir, 'dev-secrets.json');
  let saved: { authSecret?: string; adminToken?: string } = {};
  const persist = !config.databaseUrl;
  if (persist && fs.existsSync(file)) saved = JSON.parse(fs.readFileSync(file, 'utf8'));
  const kept = {
    // An older version wrote operator-set values here too: drop those.
    authSecret: saved.authSecret === config.authSecret ? undefined : saved.authSecret,
    adminToken: saved.adminToken === config.adminToken ? undefined : saved.adminToken,
  };
  if (generated.authSecret) kept.authSecret ??= randomBytes(32).toString('base64url');
  if (generated.adminToken) kept.adminToken ??= randomBytes(24).toString('base64url');
  if (persist) {
    fs.mkdirSync(config.dataDir, { recursive: true });
    fs.writeFileSync(file, JSON.stringify(kept), { mode: 0o600 });
  }
  logger.warn('AUTH_SECRET/ADMIN_TOKEN not set: using generated development secrets');
  return {
    authSecret: config.authSecret ?? kept.authSecret!,
    adminToken: config.adminToken ?? kept.adminToken!,
    generated,
  };
}

/** The URL to print for the bound address, and a warning when it is reachable from elsewhere. */
export function describeListenAddress({ address, port }: AddressInfo): {
  base: string;
  reach: string;
} {
  if (address === '0.0.0.0' || address === '::') {
    const base = `http://${address === '::' ? 'localhost' : '127.0.0.1'}:${port}`;
    return { base, reach: `all interfaces (${address}): other machines can reach it` };
  }
  const host = address.includes(':') ? `[${address}]` : address;
  return { base: `http://${host}:${port}`, reach: `${host} only` };
}

/**
 * The embedded default's banner (never in production). Tokens are printed only when signed
 * with a generated secret: an operator's AUTH_SECRET may be shared with the main application.
 */
async function printDemoHelp(address: AddressInfo, secrets: ServiceSecrets, demoPage: boolean) {
  const { base, reach } = describeListenAddress(address);
  const lines = ['', `trackcomments (embedded database) on ${base}, listening on ${reach}`];
  if (demoPage) lines.push(`Demo page: ${base}/`);
  let example = '$T';
  if (secrets.generated.authSecret) {
    lines.push('Demo tokens (valid 30 days):');
    for (const u of DEMO_USERS) {
      const token = await signUserToken(secrets.authSecret, u.id, 30 * 24 * 3600);
      if (example === '$T') example = token;
      lines.push(`  ${u.username.padEnd(6)} ${token}`);
    }
  } else {
    lines.push('Demo tokens: not printed, AUTH_SECRET is yours (sign in on the demo page).');
  }
  lines.push(
    secrets.generated.adminToken
      ? `Admin token: ${secrets.adminToken}`
      : 'Admin token: the ADMIN_TOKEN you set (not printed).',
    'Try:',
    `  curl -N -H "Authorization: Bearer ${example}" ${base}/api/tracks/night-drive-01/events`,
    `  curl -H "Authorization: Bearer ${example}" -H 'Content-Type: application/json' \\`,
    `       -d '{"content":"love this @bob","timestamp":42}' ${base}/api/tracks/night-drive-01/comments`,
    '',
  );
  process.stdout.write(lines.join('\n') + '\n');
}

export interface RunningServer {
  app: Express;
  /** What the server runs for each request: the lean paths, then the app. */
  handler: http.RequestListener;
  server: http.Server;
  url: string;
  metrics: Metrics;
  /** Graceful drain and close; resolves with the exit code to use. */
  shutdown(reason?: string): Promise<number>;
}

/** Composition root: builds every part from the configuration and starts listening. */
export async function startServer(
  config: Config,
  opts: { logger?: Logger; quiet?: boolean } = {},
): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const embedded = !config.databaseUrl;
  const secrets = devSecrets(config, logger);
  const { authSecret, adminToken } = secrets;

  // Database: PostgreSQL, or PGlite served on loopback so both take the same Prisma path.
  let connectionString = config.databaseUrl;
  let poolSize = 10;
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (!connectionString) {
    const db = await startEmbeddedDatabase({ dataDir: config.dataDir });
    connectionString = db.connectionString;
    poolSize = db.maxConnections;
    stopEmbedded = db.stop;
    await runMigrations({ connectionString, logger: { info: (m) => logger.info(m) } });
  }
  const { prisma, query } = createDatabase(connectionString, poolSize, {
    preparedStatements: config.dbPreparedStatements,
  });
  const metrics = new Metrics();
  const catalog = new CatalogStore(prisma, query);
  const eventLog = new PrismaEventLog(prisma);
  // Demo users include a team member anyone could sign in as: never in production.
  const demoData = embedded && !config.production;
  if (demoData && (await seedDemoData(prisma, catalog))) logger.info('seeded demo data');

  let bus: Bus;
  let rateLimitRedis: Redis | undefined;
  if (config.redisUrl) {
    bus = await RedisBus.connect({ url: config.redisUrl, logger, metrics });
    // Shared rate-limit counters. The offline queue stays off (a dead Redis must not queue
    // requests), so wait for the first connection: the store loads its script at startup.
    const limiterRedis = new Redis(config.redisUrl, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
    });
    limiterRedis.on('error', (err) => logger.warn({ err: err.message }, 'rate-limit redis error'));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('rate-limit Redis did not connect within 5 s')),
        5000,
      );
      limiterRedis.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    rateLimitRedis = limiterRedis;
  } else {
    bus = new MemoryBus();
  }

  const hub = new StreamHub({
    bus,
    log: eventLog,
    logger,
    metrics,
    heartbeatMs: config.heartbeatMs,
    retryMs: config.sseRetryMs,
    maxBufferBytes: config.maxSubscriberBufferBytes,
    maxStreamsPerUser: config.maxStreamsPerUser,
    maxStreamsPerReplica: config.maxStreamsPerReplica,
  });
  const relay = new OutboxRelay({
    bus,
    outbox: eventLog,
    logger,
    metrics,
    retentionMs: config.eventRetentionMs,
    pruneIntervalMs: config.eventPruneIntervalMs,
  });
  relay.start();
  const comments = new CommentService(catalog, new CommentStore(prisma, query), (events) => {
    void relay.publishCommitted(events);
  });
  const userAuth = new UserAuthenticator(authSecret, (id) => catalog.findUser(id));

  let draining = false;
  const readiness = async () => {
    const [database, busOk] = await Promise.all([
      prisma.$queryRaw`SELECT 1`.then(
        () => true,
        () => false,
      ),
      bus.isHealthy().catch(() => false),
    ]);
    return { database, bus: busOk, accepting: !draining };
  };

  const demoOn = config.demoPage && !config.production;
  const app = buildApp({
    config,
    logger,
    metrics,
    catalog,
    comments,
    userAuth,
    adminAuth: new AdminAuthenticator(adminToken),
    hub,
    readiness,
    redisCommand: rateLimitRedis
      ? (command, ...args) => rateLimitRedis.call(command, ...args)
      : undefined,
    demoRouter: demoOn
      ? createDemoRouter({
          issueToken: (userId) => signUserToken(authSecret, userId, 7 * 24 * 3600),
          listUsers: () => catalog.listUsers(),
          listTracks: () => catalog.listTracks(),
          findUser: (id) => catalog.findUser(id),
          authenticate: (req) => userAuth.authenticate(req.headers),
          secureCookies: false,
        })
      : demoNotServed(),
  });

  const handler = requestListener(app, {
    userAuth,
    comments,
    hub,
    logger,
    metrics,
    headerSteps: responseHeaderSteps(config),
    trustedOrigins: config.corsOrigins,
  });
  // Slow clients (contract section 7): a request's headers and body must arrive within
  // REQUEST_TIMEOUT_MS (checked at least once a second), else 408 and the connection closes.
  // Node times a request from its first byte to its last, not to the end of the answer, so an
  // open stream (its GET complete, its connection then taken over by the hub) is never cut.
  const requestTimeout = config.requestTimeoutMs;
  const server = http.createServer(
    {
      requestTimeout,
      headersTimeout: requestTimeout,
      connectionsCheckingInterval: Math.min(1000, requestTimeout),
    },
    handler,
  );
  server.on('clientError', answerClientError);
  // Keep-alive a bit above nginx's.
  server.keepAliveTimeout = 65000;
  // Responses in progress, so that a drain can end their keep-alive connections. server.close()
  // only closes connections idle at that instant: one busy with a request then would go idle
  // after its answer and hold the exit until the client or keepAliveTimeout closed it.
  const inFlight = new Set<http.ServerResponse>();
  const closeAfterAnswer = (res: http.ServerResponse) => {
    if (!res.headersSent) res.setHeader('Connection', 'close');
  };
  server.prependListener('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    if (draining) {
      closeAfterAnswer(res);
      return;
    }
    inFlight.add(res);
    // `on`, not `once`: close fires once anyway, and a once-wrapper per open stream costs memory.
    res.on('close', () => inFlight.delete(res));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const port = address.port;
  logger.info(
    { port, host: address.address, embedded, bus: config.redisUrl ? 'redis' : 'memory' },
    'listening',
  );
  if (demoData && !opts.quiet) await printDemoHelp(address, secrets, config.demoPage);

  let stopping: Promise<number> | undefined;
  // Graceful drain: readyz → 503, stop accepting, move streams to other replicas, finish in-flight, close.
  const shutdown = (reason = 'shutdown') =>
    (stopping ??= (async () => {
      draining = true;
      logger.info({ reason }, 'draining');
      for (const res of inFlight) closeAfterAnswer(res);
      let timedOut = false;
      const bound = new Promise<void>((resolve) =>
        setTimeout(() => {
          timedOut = true;
          resolve();
        }, config.shutdownTimeoutMs).unref(),
      );
      let idleSweep: NodeJS.Timeout | undefined;
      const graceful = (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await hub.drain(config.drainSpreadMs);
        // A response whose headers went out (keep-alive) before the drain leaves an idle
        // connection behind when it ends: close those as they turn idle.
        server.closeIdleConnections();
        idleSweep = setInterval(() => server.closeIdleConnections(), 250);
        await closed;
      })();
      await Promise.race([graceful, bound]);
      clearInterval(idleSweep);
      if (timedOut) {
        logger.error('drain timed out; closing remaining connections');
        server.closeAllConnections();
      }
      await relay.stop().catch(() => undefined);
      hub.close();
      await bus.close().catch(() => undefined);
      rateLimitRedis?.disconnect();
      await prisma.$disconnect().catch(() => undefined);
      await stopEmbedded?.().catch(() => undefined);
      logger.info('stopped');
      return timedOut ? 1 : 0;
    })());

  return { app, handler, server, url: `http://127.0.0.1:${port}`, metrics, shutdown };
}
