import type { RequestHandler } from 'express';
import { rateLimit, type Store } from 'express-rate-limit';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import type { Metrics } from '../metrics/metrics';
import { sendError } from './errors';
import type { User } from '../domain/types';

/** Sends a raw Redis command (ioredis `call`), so limits are shared by every replica. */
export type RedisCommand = (command: string, ...args: string[]) => Promise<unknown>;

/**
 * `typing` is limited per user and track. With Redis the counters live there
 * (one window for all replicas); without, in this process.
 */
export function typingRateLimit(opts: {
  limit: number;
  windowMs: number;
  redisCommand: RedisCommand | undefined;
  metrics: Metrics;
}): RequestHandler {
  let store: Store | undefined;
  if (opts.redisCommand) {
    const call = opts.redisCommand;
    store = new RedisStore({
      prefix: 'tc:rl:typing:',
      sendCommand: (command: string, ...args: string[]) =>
        call(command, ...args) as Promise<RedisReply>,
    });
  }
  return rateLimit({
    windowMs: opts.windowMs,
    limit: opts.limit,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    // A Redis hiccup must not turn typing into 500s; the bus refuses the publish anyway.
    passOnStoreError: true,
    ...(store ? { store } : {}),
    keyGenerator: (req, res) => `${(res.locals.user as User).id}:${String(req.params.trackId)}`,
    handler: (_req, res, _next, options) => {
      opts.metrics.rateLimited.inc({ limiter: 'typing' });
      const retryAfter = Math.max(1, Math.ceil(options.windowMs / 1000));
      const reset = (res.getHeader('Retry-After') as string | undefined) ?? String(retryAfter);
      sendError(res, 429, 'rate_limited', 'too many typing updates; slow down', {
        'Retry-After': reset,
      });
    },
  });
}
