import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from 'cors';
import helmet from 'helmet';
import type { Config } from '../config/config';

/** A middleware that only sets response headers; works on plain node:http requests too. */
export type HeaderStep = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void;

/** Security headers, and CORS for the configured origins (credentials allowed). */
export function responseHeaderSteps(config: Config): HeaderStep[] {
  const steps: HeaderStep[] = [helmet()];
  if (config.corsOrigins.length > 0) {
    const allowed = new Set(config.corsOrigins);
    steps.push(
      cors({
        origin: (origin, cb) => cb(null, origin !== undefined && allowed.has(origin)),
        credentials: true,
        allowedHeaders: ['Authorization', 'Content-Type', 'Last-Event-ID'],
        methods: ['GET', 'POST', 'PATCH', 'DELETE'],
        maxAge: 600,
      }),
    );
  }
  return steps;
}
