import type { Router } from 'express';
import type { Metrics } from '../metrics/metrics';
import { exactRouter } from './exact-routing';

export interface ReadinessCheck {
  /** Each dependency's state; ready only when all are true. */
  (): Promise<Record<string, boolean>>;
}

/** /healthz (the process lives), /readyz (database and bus answer, not draining), /metrics. */
export function opsRoutes(deps: { readiness: ReadinessCheck; metrics: Metrics }): Router {
  const router = exactRouter();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const checks = await deps.readiness();
    const ready = Object.values(checks).every(Boolean);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks });
  });
  router.get('/metrics', async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  return router;
}
