import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/config';

/** The secrets the service runs with, and which of them it made itself (those alone may be shown). */
export interface ServiceSecrets {
  authSecret: string;
  adminToken: string;
  generated: { authSecret: boolean; adminToken: boolean };
}

/**
 * Secrets for a non-production run without AUTH_SECRET/ADMIN_TOKEN: made once and kept beside
 * the embedded database, so demo tokens survive a restart. Only generated values go to the
 * file: a secret the operator set is never copied anywhere.
 */
export function devSecrets(config: Config, logger: Logger): ServiceSecrets {
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
