/**
 * The lean paths (src/http/entry.ts) skip express for the hot endpoints, so every middleware
 * the app runs before those endpoints' handlers needs a lean counterpart. This test sends each
 * hot request through the real app (built with fakes), records the name of every middleware
 * that ran, and requires each to be listed in LEAN_COUNTERPARTS: a middleware added to
 * buildApp, to `/api` or to a hot route fails here until the lean paths account for it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino from 'pino';
import request from 'supertest';
import { buildApp, type AppDeps } from '../src/app';
import { loadConfig } from '../src/config/config';
import { LEAN_COUNTERPARTS } from '../src/http/entry';
import { HOT_ROUTES, routeLabel, routeMatcher } from '../src/http/hot-endpoints';
import { Metrics } from '../src/metrics/metrics';

interface Layer {
  name: string;
  handle: ((...args: unknown[]) => unknown) & { stack?: Layer[] };
  route?: { stack: Layer[] };
}

/** Wraps every middleware of a stack (recursively) to record its name when it runs. */
function recordMiddleware(stack: Layer[], ran: string[]): void {
  for (const layer of stack) {
    if (layer.route) {
      // The route's last layer is the endpoint's own handler: the lean paths call it too.
      recordMiddleware(layer.route.stack.slice(0, -1), ran);
    } else if (Array.isArray(layer.handle.stack)) {
      recordMiddleware(layer.handle.stack, ran);
    } else if (layer.handle.length < 4) {
      const original = layer.handle;
      layer.handle = Object.assign(
        (...args: unknown[]) => {
          ran.push(layer.name);
          return original(...args);
        },
        { stack: undefined },
      );
    }
  }
}

const USER = { id: 7, username: 'listener', is_creator: false, is_team: false };

function appWithFakes() {
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: 'postgres://unused/unused',
    AUTH_SECRET: 'x'.repeat(32),
    ADMIN_TOKEN: 'y'.repeat(32),
    CORS_ORIGINS: 'https://app.example',
    LOG_LEVEL: 'silent',
  });
  const deps = {
    config,
    logger: pino({ level: 'silent' }),
    metrics: new Metrics(),
    catalog: {},
    comments: {
      requireTrack: async () => ({ id: 't1', duration_s: null }),
      create: async () => ({ id: 1, content: 'hi' }),
    },
    userAuth: { session: async () => ({ user: USER, expiresAt: Date.now() + 60_000 }) },
    adminAuth: {},
    hub: {
      open: async (_req: IncomingMessage, res: ServerResponse) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.end();
      },
      publishEphemeral: async () => undefined,
    },
    readiness: async () => ({ ok: true }),
  } as unknown as AppDeps;
  const app = buildApp(deps);
  const ran: string[] = [];
  recordMiddleware((app as unknown as { router: { stack: Layer[] } }).router.stack, ran);
  return { app, ran };
}

test('every middleware before a hot endpoint has a lean counterpart', async () => {
  const { app, ran } = appWithFakes();
  const seen = new Set<string>();
  const hot: [string, () => request.Test][] = [
    [
      'POST comment',
      () =>
        request(app)
          .post('/api/tracks/t1/comments')
          .set({ Origin: 'https://app.example', 'Content-Type': 'application/json' })
          .send(JSON.stringify({ content: 'hi' })),
    ],
    ['GET track events', () => request(app).get('/api/tracks/t1/events')],
    ['GET user events', () => request(app).get('/api/me/events')],
  ];
  for (const [what, send] of hot) {
    ran.length = 0;
    const res = await send();
    expect([what, res.status]).toEqual([what, what.startsWith('POST') ? 201 : 200]);
    for (const name of ran) {
      expect([what, name, name in LEAN_COUNTERPARTS]).toEqual([what, name, true]);
      seen.add(name);
    }
  }
  // No stale entries: each counterpart stands for a middleware that actually runs.
  expect([...seen].sort()).toEqual(Object.keys(LEAN_COUNTERPARTS).sort());
});

test('the route table matches exactly, decodes parameters, and labels as express does', () => {
  const comments = routeMatcher(HOT_ROUTES.createComment);
  expect(comments('/api/tracks/t%201/comments')).toEqual({ trackId: 't 1' });
  expect(comments('/api/tracks/t1/comments/')).toBeNull();
  expect(comments('/API/tracks/t1/comments')).toBeNull();
  expect(comments('/api/tracks/t1/comments?x=1')).toBeNull();
  expect(comments('/api/tracks/t1?x/comments')).toBeNull();
  expect(comments('/api/tracks/%E0%A4%A/comments')).toBeNull();
  expect(routeMatcher(HOT_ROUTES.userEvents)('/api/me/events')).toEqual({});
  expect(routeMatcher(HOT_ROUTES.userEvents)('/api/me/eventsx')).toBeNull();
  expect(routeLabel(HOT_ROUTES.createComment)).toBe('/api/tracks/:trackId/comments');
});
