import type http from 'node:http';
import type { Express } from 'express';
import type { Logger } from 'pino';
import type { Config } from './config/config';
import { buildApp } from './app';
import { Metrics } from './metrics/metrics';
import { CatalogStore } from './store/catalog-store';
import { CommentStore } from './store/comment-store';
import { WARM_CONNECTIONS } from './store/prisma';
import { PrismaEventLog } from './store/event-log';
import { seedDemoData } from './store/demo-seed';
import { CommentService } from './domain/comment-service';
import { AdminAuthenticator, UserAuthenticator } from './auth/authenticate';
import { signUserToken } from './auth/tokens';
import { StreamHub } from './streams/hub';
import { OutboxRelay } from './outbox/relay';
import { createDemoRouter, demoNotServed } from './http/demo-routes';
import { requestListener } from './http/entry';
import { responseHeaderSteps } from './http/response-headers';
import { createLogger } from './http/logging';
import { answerClientError } from './http/client-errors';
import { devSecrets } from './infra/dev-secrets';
import { openDatabase } from './infra/database';
import { connectMessaging } from './infra/redis';
import { readinessCheck } from './infra/readiness';
import { createHttpServer, listen } from './lifecycle/http-server';
import { InFlightResponses, gracefulShutdown } from './lifecycle/drain';
import { printDemoHelp } from './lifecycle/banner';

export interface RunningServer {
  /** What the server runs for each request: the lean paths, then the app. */
  handler: http.RequestListener;
  /**
   * The express app alone, without the lean paths in front of it: only for tests of the
   * express routes themselves. Anything meant to test the service serves `handler`.
   */
  expressWithoutLeanPaths: Express;
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
  const secrets = devSecrets(config, logger);
  const { authSecret, adminToken } = secrets;

  const database = await openDatabase(config, logger);
  const { prisma, query } = database;
  const metrics = new Metrics();
  const catalog = new CatalogStore(prisma, query);
  const eventLog = new PrismaEventLog(prisma, query);
  // In the background: a replica's first requests find connections open and the hot insert
  // planned instead of paying for both under load. Startup does not wait on the database.
  void database.warm(WARM_CONNECTIONS);
  // Demo users include a team member anyone could sign in as: never in production.
  const demoData = database.embedded && !config.production;
  if (demoData && (await seedDemoData(prisma, catalog))) logger.info('seeded demo data');

  const messaging = await connectMessaging(config.redisUrl, logger, metrics);
  const { bus, rateLimitRedis } = messaging;
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

  const inFlight = new InFlightResponses();
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
    readiness: readinessCheck({
      database,
      bus,
      accepting: () => inFlight.accepting,
    }),
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

  const server = createHttpServer(handler, {
    requestTimeoutMs: config.requestTimeoutMs,
    onClientError: answerClientError,
  });
  inFlight.track(server);
  const address = await listen(server, config.port, config.host);
  const port = address.port;
  logger.info(
    {
      port,
      host: address.address,
      embedded: database.embedded,
      bus: config.redisUrl ? 'redis' : 'memory',
    },
    'listening',
  );
  if (demoData && !opts.quiet) await printDemoHelp(address, secrets, config.demoPage);

  const shutdown = gracefulShutdown({
    server,
    inFlight,
    logger,
    timeoutMs: config.shutdownTimeoutMs,
    drainStreams: () => hub.drain(config.drainSpreadMs),
    async release() {
      await relay.stop().catch(() => undefined);
      hub.close();
      await messaging.close();
      await database.close();
    },
  });

  return {
    handler,
    expressWithoutLeanPaths: app,
    server,
    url: `http://127.0.0.1:${port}`,
    metrics,
    shutdown,
  };
}
