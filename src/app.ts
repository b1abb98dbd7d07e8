import path from 'node:path';
import express, { type Express, type RequestHandler, type Router } from 'express';
import type { Logger } from 'pino';
import type { Config } from './config/config';
import type { Metrics } from './metrics/metrics';
import type { CatalogStore } from './store/catalog-store';
import type { CommentService } from './domain/comment-service';
import type { AdminAuthenticator, UserAuthenticator } from './auth/authenticate';
import { requireAdmin, requireUser } from './http/auth-middleware';
import { commentRoutes } from './http/comment-routes';
import { adminRoutes } from './http/admin-routes';
import { streamRoutes } from './http/stream-routes';
import { API_PREFIX, type StreamGateway } from './http/hot-endpoints';
import { opsRoutes, type ReadinessCheck } from './http/ops-routes';
import { openApiRoutes } from './http/openapi';
import { typingRateLimit, type RedisCommand } from './http/rate-limits';
import { errorHandler, sendError } from './http/errors';
import { httpLogger } from './http/logging';
import { crossOriginProtection } from './http/cross-origin';
import { routeExactly } from './http/exact-routing';
import { formBodyParser, jsonBodyParser } from './http/validation';
import { responseHeaderSteps } from './http/response-headers';

export interface AppDeps {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  catalog: CatalogStore;
  comments: CommentService;
  userAuth: UserAuthenticator;
  adminAuth: AdminAuthenticator;
  hub: StreamGateway;
  readiness: ReadinessCheck;
  /** Shared rate-limit store (Redis) when replicated; in-process otherwise. */
  redisCommand?: RedisCommand;
  /** Demo sign-in routes, mounted at /api/demo when the demo page is on. */
  demoRouter?: Router;
}

export const PUBLIC_DIR = path.resolve(__dirname, '..', 'public');

/** Parses `TRUST_PROXY`: a hop count, true/false, or addresses/subnets (express syntax). */
function trustProxyValue(raw: string | undefined): boolean | number | string {
  if (raw === undefined) return false;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (/^\d+$/.test(raw)) return Number(raw);
  return raw;
}

/** Builds the HTTP app from injected parts (the composition root is server.ts). */
export function buildApp(deps: AppDeps): Express {
  const { config, metrics } = deps;
  const app = express();
  routeExactly(app);
  app.disable('x-powered-by');
  app.set('trust proxy', trustProxyValue(config.trustProxy));
  app.set('query parser', 'simple');

  app.use(httpLogger(deps.logger));
  for (const step of responseHeaderSteps(config)) app.use(step);
  app.use(httpMetrics(metrics));
  // Before any body is read or any route runs: a refused write changes nothing.
  app.use(crossOriginProtection(config.corsOrigins));
  app.use(jsonBodyParser());
  app.use(formBodyParser());

  app.use(opsRoutes({ readiness: deps.readiness, metrics }));
  // Public in every mode: the API's description holds nothing the contract does not publish.
  app.use(openApiRoutes(PUBLIC_DIR));
  app.use(
    '/api/admin',
    requireAdmin(deps.adminAuth),
    adminRoutes(deps.catalog, (id) => deps.userAuth.forget(id)),
  );
  if (deps.demoRouter) app.use('/api/demo', deps.demoRouter);

  const typingLimit = typingRateLimit({
    limit: config.typingLimit,
    windowMs: config.typingWindowMs,
    redisCommand: deps.redisCommand,
    metrics,
  });
  app.use(
    API_PREFIX,
    requireUser(deps.userAuth),
    commentRoutes(deps.comments),
    streamRoutes({
      comments: deps.comments,
      hub: deps.hub,
      typingLimit,
      typingExpiresMs: config.typingExpiresMs,
    }),
  );

  if (config.demoPage) app.use(express.static(PUBLIC_DIR, { index: 'index.html' }));

  app.use((req, res) => sendError(res, 404, 'not_found', `no route for ${req.method} ${req.path}`));
  app.use(errorHandler(deps.logger));
  return app;
}

/** Request durations by route; SSE streams are long-lived and counted elsewhere. */
function httpMetrics(metrics: Metrics): RequestHandler {
  return function requestMetric(req, res, next) {
    const end = metrics.httpDuration.startTimer();
    res.on('finish', () => {
      if (res.locals.sse) return;
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      end({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  };
}
