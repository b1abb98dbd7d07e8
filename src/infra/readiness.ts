import type { Bus } from '../bus/types';

/**
 * /readyz's checks: the database and the bus answer, and the server is not draining (a load
 * balancer then stops sending new requests here).
 */
export function readinessCheck(parts: {
  database: { answers(): Promise<boolean> };
  bus: Bus;
  accepting(): boolean;
}): () => Promise<{ database: boolean; bus: boolean; accepting: boolean }> {
  return async () => {
    const [database, bus] = await Promise.all([
      parts.database.answers(),
      parts.bus.isHealthy().catch(() => false),
    ]);
    return { database, bus, accepting: parts.accepting() };
  };
}
