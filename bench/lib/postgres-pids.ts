/** PostgreSQL's processes for the CPU report, found through one monitoring connection. */
import { Client } from 'pg';
import type { Cleanup } from './session';

export interface PostgresPids {
  /** Backends connected to the bench's database (the replicas' pools). */
  db: number[];
  /** Checkpointer, WAL writer and the other non-client processes. */
  background: number[];
}

/** Opens the monitoring connection (closed by `cleanup`); the result lists the pids now. */
export async function postgresPids(
  databaseUrl: string,
  cleanup: Cleanup,
): Promise<() => Promise<PostgresPids>> {
  const dbName = new URL(databaseUrl).pathname.slice(1);
  const pg = new Client({ connectionString: databaseUrl });
  pg.on('error', () => undefined);
  await pg.connect();
  cleanup.add('monitoring connection', () => pg.end());
  return async () => {
    const rows = (
      await pg.query<{ pid: number; datname: string | null; backend_type: string }>(
        'SELECT pid, datname, backend_type FROM pg_stat_activity WHERE pid <> pg_backend_pid()',
      )
    ).rows;
    return {
      db: rows.filter((r) => r.datname === dbName).map((r) => r.pid),
      background: rows.filter((r) => r.backend_type !== 'client backend').map((r) => r.pid),
    };
  };
}
