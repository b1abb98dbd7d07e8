/**
 * Configuration (contract section 6): defaults, refused values, and the
 * production requirements — checked on loadConfig and on the real entry
 * point, which must exit with one readable line instead of starting.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ConfigError, loadConfig } from '../src/config/config';

const SECRET = 'a-production-secret-0123456789';
const ADMIN = 'a-production-admin-token-0123';

/** loadConfig's error for `env`, asserting it is a one-line ConfigError. */
function configError(env: NodeJS.ProcessEnv): string {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  const message = (caught as Error).message;
  expect(message.trim().length).toBeGreaterThan(0);
  expect(message).not.toMatch(/\n/);
  return message;
}

describe('defaults (contract section 6)', () => {
  test('an empty environment is the embedded default', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      nodeEnv: 'development',
      production: false,
      port: 3000,
      host: '127.0.0.1',
      databaseUrl: undefined,
      redisUrl: undefined,
      authSecret: undefined,
      adminToken: undefined,
      heartbeatMs: 15000,
      corsOrigins: [],
      dataDir: './data',
      dbPreparedStatements: true,
      demoPage: true,
      logLevel: 'info',
    });
  });

  test('DB_PREPARED_STATEMENTS turns prepared statements off (for transaction-mode poolers)', () => {
    expect(loadConfig({ DB_PREPARED_STATEMENTS: 'false' }).dbPreparedStatements).toBe(false);
    expect(loadConfig({ DB_PREPARED_STATEMENTS: '0' }).dbPreparedStatements).toBe(false);
    expect(loadConfig({ DB_PREPARED_STATEMENTS: 'true' }).dbPreparedStatements).toBe(true);
    expect(() => loadConfig({ DB_PREPARED_STATEMENTS: 'sometimes' })).toThrow(
      /DB_PREPARED_STATEMENTS/,
    );
  });

  test('empty strings count as unset', () => {
    const c = loadConfig({ PORT: '', HEARTBEAT_MS: '', DATABASE_URL: '', CORS_ORIGINS: '' });
    expect(c).toMatchObject({
      port: 3000,
      heartbeatMs: 15000,
      databaseUrl: undefined,
      corsOrigins: [],
    });
  });

  test('the replicated mode takes the URLs, and has no demo page unless asked', () => {
    const c = loadConfig({
      DATABASE_URL: 'postgresql://u@db:5432/tc',
      REDIS_URL: 'redis://cache:6379',
    });
    expect(c).toMatchObject({
      databaseUrl: 'postgresql://u@db:5432/tc',
      redisUrl: 'redis://cache:6379',
      demoPage: false,
    });
    expect(loadConfig({ DATABASE_URL: 'postgres://db/tc', DEMO_PAGE: 'true' }).demoPage).toBe(true);
  });

  test('values are read: PORT, HOST, HEARTBEAT_MS, CORS_ORIGINS (comma-separated, trimmed)', () => {
    const c = loadConfig({
      PORT: '8080',
      HOST: '127.0.0.1',
      HEARTBEAT_MS: '2500',
      CORS_ORIGINS: 'https://a.example, https://b.example ,',
      DATA_DIR: '/var/lib/tc',
    });
    expect(c).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      heartbeatMs: 2500,
      corsOrigins: ['https://a.example', 'https://b.example'],
      dataDir: '/var/lib/tc',
    });
  });

  test('NODE_ENV=test logs nothing by default; LOG_LEVEL overrides', () => {
    expect(loadConfig({ NODE_ENV: 'test' }).logLevel).toBe('silent');
    expect(loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'debug' }).logLevel).toBe('debug');
  });

  test('without NODE_ENV=production, AUTH_SECRET and ADMIN_TOKEN may be unset', () => {
    for (const NODE_ENV of [undefined, 'development', 'test']) {
      const c = loadConfig({ NODE_ENV });
      expect(c.production).toBe(false);
      expect(c.authSecret).toBeUndefined();
    }
  });
});

describe('production requirements', () => {
  test('production without AUTH_SECRET → ConfigError naming AUTH_SECRET', () => {
    expect(configError({ NODE_ENV: 'production', ADMIN_TOKEN: ADMIN })).toMatch(/AUTH_SECRET/);
  });

  test('production without ADMIN_TOKEN → ConfigError naming ADMIN_TOKEN', () => {
    expect(configError({ NODE_ENV: 'production', AUTH_SECRET: SECRET })).toMatch(/ADMIN_TOKEN/);
  });

  test('an empty AUTH_SECRET is as good as none', () => {
    expect(configError({ NODE_ENV: 'production', AUTH_SECRET: '', ADMIN_TOKEN: ADMIN })).toMatch(
      /AUTH_SECRET/,
    );
  });

  test('a short AUTH_SECRET or ADMIN_TOKEN is refused', () => {
    expect(configError({ AUTH_SECRET: 'short' })).toMatch(/AUTH_SECRET/);
    expect(configError({ ADMIN_TOKEN: 'short' })).toMatch(/ADMIN_TOKEN/);
  });

  test('production with both is fine', () => {
    const c = loadConfig({ NODE_ENV: 'production', AUTH_SECRET: SECRET, ADMIN_TOKEN: ADMIN });
    expect(c).toMatchObject({ production: true, authSecret: SECRET, adminToken: ADMIN });
  });
});

describe('refused values', () => {
  test.each(['abc', '-1', '3.5', '80x', '1e3x'])('PORT=%s → ConfigError naming PORT', (PORT) => {
    expect(configError({ PORT })).toMatch(/PORT/);
  });

  test.each(['abc', '-1', '1.5', '5', '0'])(
    'HEARTBEAT_MS=%s → ConfigError naming HEARTBEAT_MS',
    (HEARTBEAT_MS) => {
      expect(configError({ HEARTBEAT_MS })).toMatch(/HEARTBEAT_MS/);
    },
  );

  test('DATABASE_URL and REDIS_URL must have their schemes', () => {
    expect(configError({ DATABASE_URL: 'mysql://db/tc' })).toMatch(/DATABASE_URL/);
    expect(configError({ REDIS_URL: 'http://cache:6379' })).toMatch(/REDIS_URL/);
  });

  test('LOG_LEVEL must be a pino level', () => {
    expect(configError({ LOG_LEVEL: 'verbose' })).toMatch(/LOG_LEVEL/);
  });
});

describe('the entry point refuses to start on a bad configuration', () => {
  const ROOT = path.resolve(__dirname, '..');

  /** Runs src/main.ts with exactly `env` (plus PATH/HOME); resolves with exit code and output. */
  function runMain(
    env: Record<string, string>,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--require', 'tsx/cjs', 'src/main.ts'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      // It must exit by itself; if it started serving instead, stop it and fail.
      const guard = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`src/main.ts did not exit; it printed:\n${stdout}${stderr}`));
      }, 30_000);
      child.on('error', (err) => {
        clearTimeout(guard);
        reject(err);
      });
      child.on('exit', (code) => {
        clearTimeout(guard);
        resolve({ code, stdout, stderr });
      });
    });
  }

  test('NODE_ENV=production without AUTH_SECRET: exits non-zero with one stderr line naming AUTH_SECRET', async () => {
    const { code, stdout, stderr } = await runMain({ NODE_ENV: 'production', ADMIN_TOKEN: ADMIN });
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    const lines = stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/AUTH_SECRET/);
    expect(stdout).toBe('');
  });

  test('a bad PORT: exits non-zero with one stderr line naming PORT', async () => {
    const { code, stderr } = await runMain({ NODE_ENV: 'development', PORT: 'eighty' });
    expect(code).not.toBe(0);
    const lines = stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/PORT/);
  });
});
