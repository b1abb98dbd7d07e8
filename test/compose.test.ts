import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { NGINX_DEFAULT_LIMITS, NGINX_TEMPLATE_PATH, renderNginxTemplate } from '../harness/nginx';

// docker-compose.yml is read by a real compose implementation: Debian's docker-compose (v1.29,
// installed by .ci/run) validates it against the compose schema, resolves ${...}, merge keys
// and paths, and prints the result with `config`, no docker engine needed (none runs where the
// suite runs). The checks read that result. The file avoids what v1 refuses (a top-level
// `name:`), so `docker compose` v2 takes it as well.

const ROOT = path.resolve(__dirname, '..');
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');
const REDIRECT_TEMPLATE_PATH = path.join(ROOT, 'nginx/http-redirect.conf.template');
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');

/** What an operator must put into .env; everything else has a default. */
const REQUIRED_ENV: Record<string, string> = {
  POSTGRES_PASSWORD: 'config-check-password',
  AUTH_SECRET: 'config-check-auth-secret',
  ADMIN_TOKEN: 'config-check-admin-token',
};

interface ComposeRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `docker-compose config` on `file` (relative paths against the repository), with exactly `env`
 * as its .env: nothing comes from this process's environment.
 */
function composeConfig(env: Record<string, string>, file = COMPOSE_FILE): ComposeRun {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trackcomments-compose-'));
  try {
    const envFile = path.join(dir, '.env');
    fs.writeFileSync(
      envFile,
      Object.entries(env)
        .map(([k, v]) => `${k}=${v}\n`)
        .join(''),
    );
    const args = ['--project-directory', ROOT, '--env-file', envFile, '-f', file, 'config'];
    const result = spawnSync('docker-compose', args, {
      encoding: 'utf8',
      timeout: 60000,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
    });
    if (result.error) {
      throw new Error(
        `could not run docker-compose (.ci/run installs it): ${result.error.message}`,
      );
    }
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The file with `edit` applied, run through `docker-compose config`. */
function composeConfigOfEdited(edit: (file: Record<string, unknown>) => void): ComposeRun {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trackcomments-compose-edited-'));
  try {
    const file = YAML.parse(read('docker-compose.yml'), { merge: true }) as Record<string, unknown>;
    edit(file);
    const edited = path.join(dir, 'docker-compose.yml');
    fs.writeFileSync(edited, YAML.stringify(file));
    return composeConfig(REQUIRED_ENV, edited);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A service as `docker-compose config` prints it (ports in the long form, paths absolute). */
interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  entrypoint?: string[];
  deploy?: { replicas?: number };
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: { published: number; target: number }[];
  volumes?: string[];
  restart?: string;
}
interface ResolvedCompose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/** `source:target[:mode]` of a resolved volume entry, by its target. */
function mount(service: Service, target: string): { source: string; mode?: string } | undefined {
  for (const entry of service.volumes ?? []) {
    const [source, entryTarget, mode] = entry.split(':');
    if (entryTarget === target) return { source: source!, mode };
  }
  return undefined;
}

/** Names the server reads from the environment: the zod schema keys of loadConfig, plus direct env.X reads. */
function configVariables(): string[] {
  const source = read('src/config/config.ts');
  const schemaStart = source.indexOf('z.object({');
  expect(schemaStart).toBeGreaterThan(0);
  const schema = source.slice(schemaStart, source.indexOf('\n  });', schemaStart));
  const names = new Set<string>();
  for (const m of schema.matchAll(/^\s+([A-Z][A-Z0-9_]*):/gm)) names.add(m[1]!);
  for (const m of source.matchAll(/\benv\.([A-Z][A-Z0-9_]*)/g)) names.add(m[1]!);
  return [...names].sort();
}

/** `${NAME}`, `${NAME:-default}`, `${NAME:?message}` references in a compose value. */
const referencedVariables = (text: string): string[] =>
  [...text.matchAll(/\$\{([A-Z][A-Z0-9_]*)(?::?[-?][^}]*)?\}/g)].map((m) => m[1]!);

const envExample = read('.env.example');

describe('docker-compose.yml, as docker-compose reads it', () => {
  let run: ComposeRun;
  let services: Record<string, Service>;
  let volumes: Record<string, unknown>;
  beforeAll(() => {
    run = composeConfig(REQUIRED_ENV);
    const resolved = YAML.parse(run.stdout) as ResolvedCompose | null;
    services = resolved?.services ?? {};
    volumes = resolved?.volumes ?? {};
  });

  it('is valid, and needs nothing but the three required secrets (no unset variable)', () => {
    // stderr carries "The X variable is not set" warnings and any schema error.
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
  });

  it('is checked: the same parser refuses a key the compose schema does not have', () => {
    const refused = composeConfigOfEdited((file) => {
      const app = (file.services as Record<string, Record<string, unknown>>).app!;
      app.replicas = 3; // belongs under deploy:
    });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/services\.app.*'replicas'/s);
  });

  it('refuses to start without each required secret', () => {
    for (const name of Object.keys(REQUIRED_ENV)) {
      const rest = Object.fromEntries(Object.entries(REQUIRED_ENV).filter(([k]) => k !== name));
      const refused = composeConfig(rest);
      expect({ name, status: refused.status }).toEqual({ name, status: 1 });
      expect(refused.stderr).toContain(`set ${name} in .env`);
    }
  });

  it('has postgres, redis, a one-shot migrator, the app, a one-shot certificate maker and nginx', () => {
    expect(Object.keys(services).sort()).toEqual([
      'app',
      'migrate',
      'nginx',
      'postgres',
      'redis',
      'tls-cert',
    ]);
    expect(services.postgres!.image).toMatch(/^postgres:16/);
    expect(services.redis!.image).toMatch(/^redis:7/);
    expect(services.nginx!.image).toMatch(/^nginx:1\.27/);
  });

  it('health-checks postgres and redis and keeps the database in a named volume', () => {
    expect(services.postgres!.healthcheck!.test.join(' ')).toMatch(/pg_isready/);
    expect(services.redis!.healthcheck!.test.join(' ')).toMatch(/redis-cli ping/);
    const data = mount(services.postgres!, '/var/lib/postgresql/data');
    expect(data).toEqual({ source: 'pgdata', mode: 'rw' });
    expect(Object.keys(volumes)).toContain('pgdata');
  });

  it('migrates once, from the app image, after postgres is healthy', () => {
    const migrate = services.migrate!;
    expect(migrate.image).toBe(services.app!.image);
    expect(migrate.build).toEqual(services.app!.build);
    expect(migrate.build).toEqual({ context: ROOT });
    expect(migrate.command).toEqual(['node', 'dist/store/migrate-cli.js']);
    expect(migrate.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(migrate.environment!.DATABASE_URL).toBe(services.app!.environment!.DATABASE_URL);
  });

  it('runs compiled entry points that exist as sources (dist/x.js <- src/x.ts)', () => {
    const entries = [services.migrate!.command![1]!, 'dist/main.js'];
    for (const entry of entries) {
      const source = entry.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts');
      expect({ entry, exists: fs.existsSync(path.join(ROOT, source)) }).toEqual({
        entry,
        exists: true,
      });
    }
  });

  it('runs 3 app replicas after the database, the bus and the migration, checked on /readyz', () => {
    const app = services.app!;
    expect(app.deploy!.replicas).toBe(3);
    expect(app.depends_on).toEqual({
      postgres: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
      migrate: { condition: 'service_completed_successfully' },
    });
    expect(app.healthcheck!.test.join(' ')).toMatch(/\/readyz/);
    // Only nginx is published; replicas are reached through it.
    expect(app.ports).toBeUndefined();
  });

  it('configures the app for production with the secrets from .env', () => {
    const env = services.app!.environment!;
    expect(env.NODE_ENV).toBe('production');
    expect(env.DATABASE_URL).toBe(
      `postgresql://trackcomments:${REQUIRED_ENV.POSTGRES_PASSWORD}@postgres:5432/trackcomments`,
    );
    expect(services.postgres!.environment!.POSTGRES_PASSWORD).toBe(REQUIRED_ENV.POSTGRES_PASSWORD);
    expect(env.REDIS_URL).toBe('redis://redis:6379');
    expect(env.AUTH_SECRET).toBe(REQUIRED_ENV.AUTH_SECRET);
    expect(env.ADMIN_TOKEN).toBe(REQUIRED_ENV.ADMIN_TOKEN);
    // Requests reach the replicas from nginx on the compose network (a private range).
    expect(env.TRUST_PROXY).toBe('uniquelocal');
    for (const name of ['HEARTBEAT_MS', 'CORS_ORIGINS']) expect(env).toHaveProperty(name);
    // Every app setting in the environment is one the server reads.
    const known = configVariables();
    for (const name of Object.keys(env)) expect(known).toContain(name);
  });

  it('publishes only nginx: HTTPS on 8443 and plain HTTP (the redirect) on 8080', () => {
    const nginx = services.nginx!;
    expect(nginx.ports).toEqual([
      { published: 8443, target: 443 },
      { published: 8080, target: 80 },
    ]);
    const published = Object.entries(services).filter(([, s]) => s.ports !== undefined);
    expect(published.map(([name]) => name)).toEqual(['nginx']);
  });

  it('mounts the templates the tests render, as the image expects them', () => {
    const nginx = services.nginx!;
    // default.conf replaces the image's stock welcome server.
    expect(mount(nginx, '/etc/nginx/templates/default.conf.template')).toEqual({
      source: NGINX_TEMPLATE_PATH,
      mode: 'ro',
    });
    expect(mount(nginx, '/etc/nginx/templates/http-redirect.conf.template')).toEqual({
      source: REDIRECT_TEMPLATE_PATH,
      mode: 'ro',
    });
    expect(nginx.depends_on).toEqual({
      app: { condition: 'service_healthy' },
      'tls-cert': { condition: 'service_completed_successfully' },
    });
  });

  it('gives nginx a value for every placeholder of both templates, with the test defaults', () => {
    const env = services.nginx!.environment!;
    const placeholders = new Set(
      [NGINX_TEMPLATE_PATH, REDIRECT_TEMPLATE_PATH].flatMap((file) =>
        [...fs.readFileSync(file, 'utf8').matchAll(/\$\{(NGINX_[A-Z0-9_]+)\}/g)].map((m) => m[1]!),
      ),
    );
    expect(placeholders).toContain('NGINX_TLS');
    expect(placeholders).toContain('NGINX_HTTPS_PORT');
    for (const name of placeholders) expect(env).toHaveProperty(name);
    // The image substitutes only names matching this filter, so nginx's $variables survive.
    expect(env.NGINX_ENVSUBST_FILTER).toBe('^NGINX_');
    expect(env.NGINX_UPSTREAM_SERVERS).toMatch(/server app:3000 resolve max_fails=0;/);
    expect(env.NGINX_UPSTREAM_SERVERS).toMatch(/resolver 127\.0\.0\.11/);
    expect(Number(env.NGINX_STREAMS_PER_CLIENT)).toBe(NGINX_DEFAULT_LIMITS.streamsPerClient);
    expect(Number(env.NGINX_WRITES_PER_SECOND)).toBe(NGINX_DEFAULT_LIMITS.writesPerSecond);
    expect(Number(env.NGINX_WRITE_BURST)).toBe(NGINX_DEFAULT_LIMITS.writeBurst);
  });

  it('serves HTTPS + HTTP/2 with the certificate the tls-cert service keeps in a named volume', () => {
    const nginx = services.nginx!;
    const tlsCert = services['tls-cert']!;
    const env = nginx.environment!;
    expect(env.NGINX_LISTEN).toBe('443 ssl');
    expect(env.NGINX_TLS).toBe(
      'http2 on; ssl_certificate /etc/nginx/tls/tls.crt; ssl_certificate_key /etc/nginx/tls/tls.key;',
    );
    // The redirect points at the published HTTPS port.
    expect(env.NGINX_HTTP_REDIRECT_LISTEN).toBe('80');
    expect(Number(env.NGINX_HTTPS_PORT)).toBe(nginx.ports![0]!.published);
    // One volume: written by the one-shot, read-only for nginx, kept across restarts.
    expect(mount(tlsCert, '/etc/nginx/tls')).toEqual({ source: 'tls', mode: 'rw' });
    expect(mount(nginx, '/etc/nginx/tls')).toEqual({ source: 'tls', mode: 'ro' });
    expect(Object.keys(volumes)).toContain('tls');
    // The one-shot is the repository's script, run by the nginx image (no other image to pull).
    expect(tlsCert.image).toBe(nginx.image);
    expect(mount(tlsCert, '/usr/local/bin/self-signed-cert.sh')).toEqual({
      source: path.join(ROOT, 'nginx/self-signed-cert.sh'),
      mode: 'ro',
    });
    expect(tlsCert.entrypoint).toEqual([
      '/bin/sh',
      '/usr/local/bin/self-signed-cert.sh',
      '/etc/nginx/tls',
      'localhost',
    ]);
    expect(tlsCert.restart).toBe('no');
  });

  it('uses a mounted certificate directory instead of the volume when TLS_CERT_DIR is set', () => {
    const own = composeConfig({ ...REQUIRED_ENV, TLS_CERT_DIR: '/etc/trackcomments/tls' });
    expect(own.status).toBe(0);
    const ownServices = (YAML.parse(own.stdout) as ResolvedCompose).services;
    expect(mount(ownServices.nginx!, '/etc/nginx/tls')).toEqual({
      source: '/etc/trackcomments/tls',
      mode: 'ro',
    });
    expect(mount(ownServices['tls-cert']!, '/etc/nginx/tls')!.source).toBe(
      '/etc/trackcomments/tls',
    );
  });

  it('renders for nginx 1.27 exactly what nginx/render.sh renders for it', () => {
    const env = services.nginx!.environment!;
    const fromCompose =
      renderNginxTemplate(fs.readFileSync(NGINX_TEMPLATE_PATH, 'utf8'), env) +
      renderNginxTemplate(fs.readFileSync(REDIRECT_TEMPLATE_PATH, 'utf8'), env);
    const rendered = spawnSync(path.join(ROOT, 'nginx/render.sh'), [], {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        NGINX_VERSION: `${services.nginx!.image!.split(':')[1]}.0`,
        NGINX_LISTEN: '443',
        NGINX_TLS_CERTIFICATE: '/etc/nginx/tls/tls.crt',
        NGINX_TLS_CERTIFICATE_KEY: '/etc/nginx/tls/tls.key',
        NGINX_HTTP_REDIRECT_LISTEN: env.NGINX_HTTP_REDIRECT_LISTEN!,
        NGINX_HTTPS_PORT: env.NGINX_HTTPS_PORT!,
        NGINX_ACCESS_LOG: env.NGINX_ACCESS_LOG!,
        NGINX_UPSTREAM_SERVERS: env.NGINX_UPSTREAM_SERVERS!,
        NGINX_STREAMS_PER_CLIENT: env.NGINX_STREAMS_PER_CLIENT!,
        NGINX_WRITES_PER_SECOND: env.NGINX_WRITES_PER_SECOND!,
        NGINX_WRITE_BURST: env.NGINX_WRITE_BURST!,
      },
    });
    expect({ status: rendered.status, stderr: rendered.stderr }).toEqual({ status: 0, stderr: '' });
    expect(rendered.stdout).toBe(fromCompose);
  });

  it("keeps nginx's SSE read timeout at least 3 heartbeats", () => {
    const heartbeatMs = Number(services.app!.environment!.HEARTBEAT_MS);
    expect(heartbeatMs).toBeGreaterThan(0);
    const template = fs.readFileSync(NGINX_TEMPLATE_PATH, 'utf8');
    const sse = template.slice(template.indexOf('location ~ "^/api/'));
    const timeoutS = Number(/proxy_read_timeout (\d+)s;/.exec(sse)![1]);
    expect(timeoutS * 1000).toBeGreaterThanOrEqual(3 * heartbeatMs);
  });
});

describe('.env.example', () => {
  const documented = (name: string) => new RegExp(`^#? ?${name}=`, 'm').test(envExample);

  it('documents every variable the server reads', () => {
    const names = configVariables();
    // Sanity: the extraction found the schema.
    expect(names).toEqual(
      expect.arrayContaining(['DATABASE_URL', 'REDIS_URL', 'AUTH_SECRET', 'HEARTBEAT_MS']),
    );
    expect(names.filter((n) => !documented(n))).toEqual([]);
  });

  it('documents every variable docker-compose.yml reads', () => {
    const names = [...new Set(referencedVariables(read('docker-compose.yml')))];
    expect(names).toContain('AUTH_SECRET');
    expect(names.filter((n) => !documented(n))).toEqual([]);
  });

  it('has a comment line before each variable and no secret values', () => {
    const lines = envExample.split('\n');
    lines.forEach((line, i) => {
      if (!/^#? ?[A-Z][A-Z0-9_]*=/.test(line)) return;
      // The variable itself or a preceding line of its group carries a description.
      const before = lines.slice(0, i).reverse();
      const description = before.find((l) => !/^#? ?[A-Z][A-Z0-9_]*=/.test(l));
      expect(description).toMatch(/^# \S/);
    });
    for (const secret of ['AUTH_SECRET', 'ADMIN_TOKEN', 'POSTGRES_PASSWORD']) {
      expect(envExample).toMatch(new RegExp(`^${secret}=$`, 'm'));
    }
  });
});
