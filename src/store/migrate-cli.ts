/**
 * `npm run db:migrate`: applies prisma/migrations to DATABASE_URL, or, when DATABASE_URL is
 * unset, to the embedded database in DATA_DIR (default ./data). Exits 1 with a one-line reason
 * on failure. Never prints the password of the URL.
 */
import { redactUrlPassword } from '../config/redact-url';
import { startEmbeddedDatabase } from './embedded-db';
import { runMigrations, type RunMigrationsResult } from './migrate';

/** Removes the URL's password from a message, however a driver may have quoted it. */
function scrubSecret(message: string, url: string | undefined): string {
  if (!url) return message;
  let password: string;
  try {
    password = new URL(url).password;
  } catch {
    // Unparseable: hide the whole URL instead.
    return message.split(url).join('(DATABASE_URL)');
  }
  if (!password) return message;
  let out = message.split(url).join(redactUrlPassword(url));
  let decoded = password;
  try {
    decoded = decodeURIComponent(password);
  } catch {
    // Malformed %-escape: only the raw form can appear.
  }
  for (const form of new Set([password, decoded])) {
    out = out.split(form).join('***');
  }
  return out;
}

function report(result: RunMigrationsResult, target: string): void {
  if (result.applied.length === 0) {
    console.log(`${target}: no pending migrations, database is up to date`);
  } else {
    console.log(
      `${target}: applied ${result.applied.length} migration(s): ${result.applied.join(', ')}`,
    );
  }
}

/** A readable reason, also for errors without a message (e.g. AggregateError of ECONNREFUSED). */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.message) return error.message;
  const nested = (error as { errors?: unknown[] }).errors;
  if (Array.isArray(nested) && nested.length > 0) return nested.map(describeError).join('; ');
  return (error as NodeJS.ErrnoException).code ?? error.name;
}

async function main(): Promise<void> {
  const url = process.env.DATABASE_URL || undefined;
  const logger = { info: () => undefined, warn: (msg: string) => console.warn(`warning: ${msg}`) };
  try {
    if (url) {
      if (!/^postgres(ql)?:\/\//.test(url)) {
        throw new Error('DATABASE_URL must be a postgres:// or postgresql:// URL');
      }
      const target = redactUrlPassword(url);
      report(await runMigrations({ connectionString: url, logger }), target);
    } else {
      const dataDir = process.env.DATA_DIR || './data';
      const db = await startEmbeddedDatabase({ dataDir });
      try {
        report(
          await runMigrations({ connectionString: db.connectionString, logger }),
          `embedded database in ${db.databaseDir}`,
        );
      } finally {
        await db.stop();
      }
    }
  } catch (error) {
    const reason = describeError(error);
    console.error(`db:migrate failed: ${scrubSecret(reason, url).replace(/\s+/g, ' ').trim()}`);
    process.exitCode = 1;
  }
}

if (require.main === module) {
  void main();
}
