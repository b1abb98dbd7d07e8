import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { MemoryBus } from '../bus/memory-bus';
import { RedisBus } from '../bus/redis-bus';
import type { Bus } from '../bus/types';
import type { Metrics } from '../metrics/metrics';

/** What the service uses Redis for; without REDIS_URL, an in-process bus and no shared counters. */
export interface Messaging {
  bus: Bus;
  /** The shared rate-limit counters' client, when replicated. */
  rateLimitRedis?: Redis;
  /** Closes the bus and disconnects the rate-limit client; never throws. */
  close(): Promise<void>;
}

/** The bus (Redis pub/sub or in-process) and, with Redis, a second client for rate limits. */
export async function connectMessaging(
  redisUrl: string | undefined,
  logger: Logger,
  metrics: Metrics,
): Promise<Messaging> {
  const bus: Bus = redisUrl
    ? await RedisBus.connect({ url: redisUrl, logger, metrics })
    : new MemoryBus();
  const rateLimitRedis = redisUrl ? await connectRateLimitRedis(redisUrl, logger) : undefined;
  return {
    bus,
    rateLimitRedis,
    async close() {
      await bus.close().catch(() => undefined);
      rateLimitRedis?.disconnect();
    },
  };
}

/**
 * Shared rate-limit counters. The offline queue stays off (a dead Redis must not queue
 * requests), so wait for the first connection: the store loads its script at startup.
 */
async function connectRateLimitRedis(url: string, logger: Logger): Promise<Redis> {
  const redis = new Redis(url, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
  });
  redis.on('error', (err) => logger.warn({ err: err.message }, 'rate-limit redis error'));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('rate-limit Redis did not connect within 5 s')),
      5000,
    );
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return redis;
}
