import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { NGINX_DEFAULT_LIMITS, NGINX_TEMPLATE_PATH } from '../harness/nginx';

// Static checks of the production shape: docker is not available where the
// suite runs, so the files are checked against each other and against the
// code they configure.

const ROOT = path.resolve(__dirname, '..');
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  deploy?: { replicas?: number };
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: string[];
  volumes?: string[];
}

// merge: compose honours YAML merge keys (<<), used for the shared app image.
const compose = YAML.parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const services = compose.services;
const envExample = read('.env.example');

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

const defaultOf = (value: string | undefined): string | undefined =>
  /^\$\{[A-Z0-9_]+:-([^}]*)\}$/.exec(value ?? '')?.[1];

describe('docker-compose.yml', () => {
  it('has postgres, redis, a one-shot migrator, the app and nginx', () => {
    expect(Object.keys(services).sort()).toEqual(['app', 'migrate', 'nginx', 'postgres', 'redis']);
    expect(services.postgres!.image).toMatch(/^postgres:16/);
    expect(services.redis!.image).toMatch(/^redis:7/);
    expect(services.nginx!.image).toMatch(/^nginx:1\.27/);
  });

  it('health-checks postgres and redis and keeps the database in a named volume', () => {
    expect(services.postgres!.healthcheck!.test.join(' ')).toMatch(/pg_isready/);
    expect(services.redis!.healthcheck!.test.join(' ')).toMatch(/redis-cli ping/);
    const dataVolume = services.postgres!.volumes!.find((v) =>
      v.endsWith(':/var/lib/postgresql/data'),
    );
    expect(dataVolume).toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(dataVolume!.split(':')[0]);
  });

  it('migrates once, from the app image, after postgres is healthy', () => {
    const migrate = services.migrate!;
    expect(migrate.image).toBe(services.app!.image);
    expect(migrate.build).toEqual(services.app!.build);
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

  it('configures the app for production with secrets that must be provided', () => {
    const env = services.app!.environment!;
    expect(env.NODE_ENV).toBe('production');
    expect(env.DATABASE_URL).toMatch(/^postgresql:\/\/[^@]+@postgres:5432\//);
    expect(env.REDIS_URL).toBe('redis://redis:6379');
    // Required variables: compose refuses to start without them, and no default secret exists.
    expect(env.AUTH_SECRET).toMatch(/^\$\{AUTH_SECRET:\?/);
    expect(env.ADMIN_TOKEN).toMatch(/^\$\{ADMIN_TOKEN:\?/);
    expect(services.postgres!.environment!.POSTGRES_PASSWORD).toMatch(/^\$\{POSTGRES_PASSWORD:\?/);
    for (const name of ['HEARTBEAT_MS', 'CORS_ORIGINS', 'TRUST_PROXY'])
      expect(env).toHaveProperty(name);
    // Every app setting in the environment is one the server reads.
    const known = configVariables();
    for (const name of Object.keys(env)) expect(known).toContain(name);
  });

  it('publishes nginx and mounts the same template the tests run', () => {
    const nginx = services.nginx!;
    expect(nginx.ports).toHaveLength(1);
    expect(nginx.ports![0]).toMatch(/:80$/);
    expect(nginx.environment!.NGINX_LISTEN).toBe('80');
    const mount = nginx.volumes!.find((v) => v.includes('/etc/nginx/templates/'))!;
    const [source, target] = mount.split(':');
    expect(path.resolve(ROOT, source!)).toBe(NGINX_TEMPLATE_PATH);
    // default.conf replaces the image's stock welcome server.
    expect(target).toBe('/etc/nginx/templates/default.conf.template');
    expect(nginx.depends_on).toEqual({ app: { condition: 'service_healthy' } });
  });

  it('gives nginx a value for every template placeholder, with the test defaults', () => {
    const env = services.nginx!.environment!;
    const placeholders = new Set(
      [...fs.readFileSync(NGINX_TEMPLATE_PATH, 'utf8').matchAll(/\$\{(NGINX_[A-Z0-9_]+)\}/g)].map(
        (m) => m[1]!,
      ),
    );
    expect(placeholders.size).toBeGreaterThan(0);
    for (const name of placeholders) expect(env).toHaveProperty(name);
    // The image substitutes only names matching this filter, so nginx's $variables survive.
    expect(env.NGINX_ENVSUBST_FILTER).toBe('^NGINX_');
    expect(env.NGINX_UPSTREAM_SERVERS).toMatch(/server app:3000 resolve max_fails=0;/);
    expect(env.NGINX_UPSTREAM_SERVERS).toMatch(/resolver 127\.0\.0\.11/);
    expect(Number(defaultOf(env.NGINX_STREAMS_PER_CLIENT))).toBe(
      NGINX_DEFAULT_LIMITS.streamsPerClient,
    );
    expect(Number(defaultOf(env.NGINX_WRITES_PER_SECOND))).toBe(
      NGINX_DEFAULT_LIMITS.writesPerSecond,
    );
    expect(Number(defaultOf(env.NGINX_WRITE_BURST))).toBe(NGINX_DEFAULT_LIMITS.writeBurst);
  });

  it("keeps nginx's SSE read timeout at least 3 heartbeats", () => {
    const heartbeatMs = Number(defaultOf(services.app!.environment!.HEARTBEAT_MS));
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

describe('Dockerfile', () => {
  // Instructions, with line continuations joined and comments dropped.
  const instructions = read('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: string[][] = [];
  for (const line of instructions) {
    if (/^FROM /i.test(line)) stages.push([]);
    stages.at(-1)?.push(line);
  }
  const runtime = stages.at(-1)!;
  const args = Object.fromEntries(
    instructions
      .filter((l) => /^ARG \w+=/.test(l))
      .map((l) => l.slice(4).split('=') as [string, string]),
  );
  const baseOf = (from: string) =>
    from.split(/\s+/)[1]!.replace(/^\$\{(\w+)\}$/, (_, name: string) => args[name] ?? name);

  it('is multi-stage and runs on node 20 slim', () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    expect(baseOf(runtime[0]!)).toMatch(/^node:20(\.[\d.]+)?-(bookworm-)?slim$/);
  });

  it('generates the Prisma client and compiles at build time', () => {
    const build = stages.find((s) => s.some((l) => /^RUN npm run build\b/.test(l)));
    expect(build).toBeDefined();
    expect(build!.some((l) => /^COPY prisma\b/.test(l))).toBe(true);
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> })
      .scripts;
    expect(scripts.build).toMatch(/npm run prisma:generate/);
    expect(scripts['prisma:generate']).toMatch(/prisma generate/);
    expect(scripts.build).toMatch(/tsc -p tsconfig\.build\.json/);
    expect(stages.some((s) => s.some((l) => /npm ci\b.*--omit=dev/.test(l)))).toBe(true);
  });

  it('runs as a non-root user in production mode', () => {
    const users = runtime.filter((l) => /^USER /.test(l));
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)!.slice(5).trim()).not.toMatch(/^(root|0)(:|$)/);
    expect(runtime).toContain('ENV NODE_ENV=production');
    expect(runtime).toContain('EXPOSE 3000');
    expect(runtime).toContain('CMD ["node", "dist/main.js"]');
    expect(runtime.find((l) => /^HEALTHCHECK /.test(l))).toMatch(/\/healthz/);
  });

  it('keeps dependencies, data, build output, git and secrets out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim());
    for (const entry of ['node_modules', 'data', 'dist', '.git', 'test-artifacts', '.env']) {
      expect(ignored).toContain(entry);
    }
  });
});
