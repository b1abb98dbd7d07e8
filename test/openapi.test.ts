/**
 * GET /openapi.json (issue 12): the document is valid OpenAPI 3.1 by a real validator, and it
 * names exactly the routes the built app serves — read from the app's express router stack,
 * so a route added without documentation (or documentation of a route that is gone) fails.
 * And /docs renders it in Chromium under the app's own CSP, with nothing fetched elsewhere.
 */
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import request from 'supertest';
import { buildApp, type AppDeps } from '../src/app';
import { STREAM_EVENTS } from '../src/events/catalogue';
import { loadConfig } from '../src/config/config';
import { createDemoRouter } from '../src/http/demo-routes';
import { API_PREFIX, HOT_ROUTES } from '../src/http/hot-endpoints';
import { buildOpenApiDocument } from '../src/http/openapi';
import { OPERATIONS } from '../src/http/openapi-operations';
import { Metrics } from '../src/metrics/metrics';
import { ensureClientBuilt, launchChromium } from './support/browser-env';

interface Layer {
  handle: { stack?: Layer[] };
  rawPath?: unknown;
  slash?: boolean;
  route?: { path: string; methods: Record<string, boolean> };
}

/** The demo sign-in is not part of the API (never served in production): left out on purpose. */
const NOT_DOCUMENTED = ['/api/demo/'];

/** `METHOD /path` of every route in an express stack, mount paths included (recursively). */
function servedRoutes(stack: Layer[], prefix = ''): string[] {
  return stack.flatMap((layer) => {
    if (layer.route) {
      return Object.keys(layer.route.methods).map(
        (m) => `${m.toUpperCase()} ${prefix}${layer.route!.path}`,
      );
    }
    if (!Array.isArray(layer.handle.stack)) return [];
    const mount = typeof layer.rawPath === 'string' && !layer.slash ? layer.rawPath : '';
    return servedRoutes(layer.handle.stack, prefix + mount);
  });
}

const USER = { id: 7, username: 'listener', is_creator: false, is_team: false };

/** The app with every part faked: the routes and middleware are the real ones. */
function appWith(env: Record<string, string>) {
  const config = loadConfig({
    DATABASE_URL: 'postgres://unused/unused',
    AUTH_SECRET: 'x'.repeat(32),
    ADMIN_TOKEN: 'y'.repeat(32),
    LOG_LEVEL: 'silent',
    ...env,
  });
  const deps = {
    config,
    logger: pino({ level: 'silent' }),
    metrics: new Metrics(),
    catalog: {},
    comments: {},
    userAuth: {
      session: async () => ({ user: USER, expiresAt: Date.now() + 60_000 }),
    },
    adminAuth: { check: () => undefined },
    hub: {},
    readiness: async () => ({ database: true }),
    demoRouter: config.demoPage
      ? createDemoRouter({
          issueToken: async () => 'token',
          listUsers: async () => [],
          listTracks: async () => [],
          findUser: async () => null,
          secureCookies: false,
        })
      : undefined,
  } as unknown as AppDeps;
  return buildApp(deps);
}

type Doc = { openapi: string; paths: Record<string, Record<string, unknown>> };
const doc = buildOpenApiDocument() as unknown as Doc;

/** `METHOD /path` of every operation in the document, in express's `:param` spelling. */
const documentedRoutes = (d: Doc): string[] =>
  Object.entries(d.paths).flatMap(([path, item]) =>
    Object.keys(item).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
  );

test('the document is valid OpenAPI 3.1 by @seriousme/openapi-schema-validator', () => {
  // The validator ships ES modules only (jest runs CommonJS here): it runs in its own node.
  const script = `
    import { Validator } from '@seriousme/openapi-schema-validator';
    let input = '';
    for await (const chunk of process.stdin) input += chunk;
    const validator = new Validator();
    const result = await validator.validate(JSON.parse(input));
    console.log(JSON.stringify({ ...result, version: validator.version }));`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: process.cwd(),
    input: JSON.stringify(doc),
    encoding: 'utf8',
  });
  expect(run.stderr).toBe('');
  expect(JSON.parse(run.stdout)).toEqual({ valid: true, version: '3.1' });
  expect(doc.openapi).toMatch(/^3\.1\./);
});

test('the validator refuses a broken document (the check above can fail)', () => {
  const broken = { ...doc, paths: { '/x': { get: { responses: { 200: {} } } } } };
  const run = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { Validator } from '@seriousme/openapi-schema-validator';
       const r = await new Validator().validate(${JSON.stringify(broken)});
       console.log(JSON.stringify(r.valid));`,
    ],
    { encoding: 'utf8' },
  );
  expect(run.stdout.trim()).toBe('false');
});

test('every route the app serves is in the document, and nothing else is', () => {
  const app = appWith({ NODE_ENV: 'test', DEMO_PAGE: 'true' });
  const stack = (app as unknown as { router: { stack: Layer[] } }).router.stack;
  const served = servedRoutes(stack);
  // The demo routes are there (so the exclusion below is of something real) and left out.
  expect(served.some((r) => r.includes('/api/demo/'))).toBe(true);
  const api = served.filter((r) => !NOT_DOCUMENTED.some((prefix) => r.includes(` ${prefix}`)));
  expect([...new Set(api)].sort()).toEqual([...new Set(documentedRoutes(doc))].sort());
  // The lean paths answer these without express: they are in the document too.
  for (const route of Object.values(HOT_ROUTES)) {
    expect(documentedRoutes(doc)).toContain(`${route.method} ${API_PREFIX}${route.path}`);
  }
});

test('each request body accepts exactly the media types the document names', async () => {
  const app = appWith({ NODE_ENV: 'test' });
  for (const op of OPERATIONS.filter((o) => o.body)) {
    const url = op.path.replace(/:\w+/g, '1');
    const form = await request(app)[op.method](url).type('form').send('a=1');
    const status = form.status;
    const what = `${op.method.toUpperCase()} ${op.path} as a form`;
    // Past the media type check, the unknown field `a` is refused by the body's schema.
    expect([what, status]).toEqual([what, op.body!.kinds.includes('form') ? 400 : 415]);
    const text = await request(app)[op.method](url).set('Content-Type', 'text/plain').send('a');
    expect([op.path, text.status]).toEqual([op.path, 415]);
  }
});

test('/openapi.json is public, cacheable, exact, and served in production too', async () => {
  for (const env of [{ NODE_ENV: 'test' }, { NODE_ENV: 'production' }]) {
    const app = appWith(env);
    const res = await request(app).get('/openapi.json');
    expect([env.NODE_ENV, res.status]).toEqual([env.NODE_ENV, 200]);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    expect(res.body).toEqual(JSON.parse(JSON.stringify(doc)));
    const etag = res.headers.etag as string;
    expect(etag).toBeTruthy();
    expect((await request(app).get('/openapi.json').set('If-None-Match', etag)).status).toBe(304);
    const page = await request(app).get('/docs');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain('<script type="module" src="/docs/docs-page.js"></script>');
    for (const other of ['/OpenAPI.json', '/openapi.json/', '/docs/', '/Docs']) {
      expect([other, (await request(app).get(other)).status]).toEqual([other, 404]);
    }
    expect((await request(app).post('/openapi.json')).status).toBe(404);
  }
});

test('/docs renders every operation in Chromium, offline, with no CSP violation', async () => {
  ensureClientBuilt();
  // Production mode: no demo page, and the docs are still there.
  const server = http.createServer(appWith({ NODE_ENV: 'production' }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const problems: string[] = [];
    const requested: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('request', (r) => requested.push(r.url()));
    await page.addInitScript(() => {
      const seen: string[] = [];
      (window as unknown as { __csp: string[] }).__csp = seen;
      document.addEventListener('securitypolicyviolation', (e) =>
        seen.push(`${e.violatedDirective} ${e.blockedURI}`),
      );
    });
    const res = await page.goto(`${origin}/docs`, { timeout: 60000 });
    expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.locator('#docs[data-rendered="true"]').waitFor({ timeout: 60000 });

    const rendered = await page
      .locator('section.op')
      .evaluateAll((sections) =>
        sections.map((s) => `${s.getAttribute('data-method')} ${s.getAttribute('data-path')}`),
      );
    const inDocument = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(rendered.sort()).toEqual(inDocument.sort());
    // Each stream's events (from the one catalogue) and the schemas they point to are shown.
    const streams = {
      track: '/api/tracks/{trackId}/events',
      user: '/api/me/events',
    } as const;
    for (const [kind, path] of Object.entries(streams) as [keyof typeof streams, string][]) {
      const shown = await page
        .locator(`section.op[data-path="${path}"] [data-alternative]`)
        .evaluateAll((items) => items.map((i) => i.getAttribute('data-alternative')));
      expect([kind, shown]).toEqual([kind, [...STREAM_EVENTS[kind]]]);
    }
    await expect(page.locator('#schema-NewCommentEvent').count()).resolves.toBe(1);
    await expect(page.locator('#schema-Comment').count()).resolves.toBe(1);

    expect(await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp)).toEqual([]);
    expect(problems).toEqual([]);
    expect(requested.filter((url) => !url.startsWith(origin))).toEqual([]);
  } finally {
    await browser.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}, 180000);
