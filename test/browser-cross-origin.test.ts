/**
 * Cross-site writes in a real browser (contract section 7): Chromium, signed in to the demo
 * page (an `access_token` cookie), visits pages of two other origins that post to the
 * service — a form submit and a `fetch` with credentials — and every such write is refused
 * (403 `cross_origin_request`) and creates nothing. Meanwhile the demo page, on the service's
 * own origin, keeps posting. Service: one real replica behind the real nginx config.
 *
 * The other origins: `http://127.0.0.1:<other port>` is same-site with the service
 * (`http://127.0.0.1:<nginx port>`: cookies ignore ports), so Chromium sends the SameSite=Lax
 * cookie along and only the origin rule stops the write; `http://localhost:<other port>` is
 * cross-site.
 */
import http from 'node:http';
import type net from 'node:net';
import { randomBytes } from 'node:crypto';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import {
  launchChromium,
  DEMO_ALBUM,
  DEMO_TRACKS,
  DEMO_USERS,
  ensureClientBuilt,
} from './support/browser-env';
import { adminPutOver, seedCatalog } from '../harness/catalog';
import { jsonRequest } from '../harness/http';
import { startNginx, type RunningNginx } from '../harness/nginx';
import { userToken } from '../harness/replica';
import { waitFor } from '../harness/wait';
import { startStack, type Stack } from './support/stack';

const RUN = randomBytes(3).toString('hex');
const TRACK = DEMO_TRACKS[0];
const SLOW = 30000;

let stack: Stack | undefined;
let nginx: RunningNginx | undefined;
let other: http.Server | undefined;
let otherPort = 0;
let browser: Browser | undefined;
let context: BrowserContext;

/** A page of another site: a form aimed at the service's comment endpoint. */
function otherSitePage(target: string): string {
  return `<!doctype html><meta charset="utf-8"><title>another site</title>
<form id="f" method="POST" action="${target}">
  <input name="content" value=""><input name="timestamp" value="1">
</form>`;
}

beforeAll(async () => {
  ensureClientBuilt();
  stack = await startStack({
    replicas: 1,
    env: {
      DEMO_PAGE: 'true',
      NODE_ENV: 'test',
      TRUST_PROXY: 'loopback',
      LOG_LEVEL: 'warn',
      DRAIN_SPREAD_MS: '0',
      SHUTDOWN_TIMEOUT_MS: '3000',
    },
    replicaTimeoutMs: 90000,
    killAfterMs: 8000,
    debugVar: 'BROWSER_DEBUG',
  });
  const replica = stack.replicas[0]!;
  await seedCatalog(
    adminPutOver(() => replica.url),
    { users: DEMO_USERS, album: DEMO_ALBUM, tracks: [TRACK] },
  );
  nginx = await startNginx({ upstreams: [`127.0.0.1:${replica.port}`] });
  const target = `${nginx.url}/api/tracks/${TRACK.id}/comments`;
  other = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(otherSitePage(target));
  });
  await new Promise<void>((r) => other!.listen(0, '127.0.0.1', r));
  otherPort = (other.address() as net.AddressInfo).port;

  browser = await launchChromium();
  context = await browser.newContext();
}, 300000);

afterAll(async () => {
  const errors: unknown[] = [];
  const run = async (step: () => unknown) => {
    try {
      await step();
    } catch (e) {
      errors.push(e);
    }
  };
  await run(() => browser?.close());
  await run(() => nginx?.stop());
  await run(
    () =>
      other &&
      new Promise<void>((r) => {
        other!.closeAllConnections();
        other!.close(() => r());
      }),
  );
  await run(() => stack?.close());
  if (errors.length > 0) throw errors[0];
}, 120000);

/** Every comment's content on the track (bearer token, no browser involved). */
async function contents(): Promise<string[]> {
  const res = await jsonRequest(
    `${nginx!.url}/api/tracks/${TRACK.id}/comments?order=created&limit=100`,
    'GET',
    { token: await userToken(DEMO_USERS.alice.id) },
  );
  expect(res.status).toBe(200);
  return (res.json as { comments: { content: string }[] }).comments.map((c) => c.content);
}

/** POSTs to the comment endpoint that nginx logged as answered 403. */
function refusedPosts(): number {
  return nginx!
    .accessLog()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { method: string; path: string; status: number })
    .filter(
      (l) =>
        l.method === 'POST' && l.path === `/api/tracks/${TRACK.id}/comments` && l.status === 403,
    ).length;
}

const isPostTo = (url: string) => (r: { url(): string; request(): { method(): string } }) =>
  r.url() === url && r.request().method() === 'POST';

let demo: Page;

test('signed in on the demo page, the browser holds the session cookie', async () => {
  demo = await context.newPage();
  demo.setDefaultTimeout(SLOW);
  await demo.goto(`${nginx!.url}/#track=${encodeURIComponent(TRACK.id)}`, { waitUntil: 'load' });
  await waitFor(
    async () => (await demo.locator('[data-testid="user-select"] option').count()) > 1,
    {
      timeoutMs: SLOW,
      what: 'the demo page to list its users',
    },
  );
  await demo.locator('[data-testid="user-select"]').selectOption(String(DEMO_USERS.bob.id));
  await demo.locator('[data-testid="comment-input"]:not([disabled])').waitFor();
  const cookies = await context.cookies(nginx!.url);
  expect(cookies.map((c) => c.name)).toContain('access_token');
}, 120000);

describe.each([
  ['same-site (127.0.0.1, another port)', '127.0.0.1', 'same-site', true],
  ['cross-site (localhost)', 'localhost', 'cross-site', false],
])('a page of another origin, %s', (_name, host, site, cookieSent) => {
  let page: Page;
  beforeAll(async () => {
    page = await context.newPage();
    page.setDefaultTimeout(SLOW);
  });
  // Afresh for each test: a submitted form navigates the page away to the service's answer.
  beforeEach(async () => {
    await page.goto(`http://${host}:${otherPort}/`, { waitUntil: 'load' });
    expect(await page.evaluate(() => window.location.origin)).toBe(`http://${host}:${otherPort}`);
  }, 60000);
  afterAll(() => page?.close());

  /** What the browser sent: its own label of the request, its Origin, the cookie or not. */
  function expectLabels(sent: Record<string, string>): void {
    expect(sent['sec-fetch-site']).toBe(site);
    expect(sent.origin).toBe(`http://${host}:${otherPort}`);
    expect((sent.cookie ?? '').includes('access_token=')).toBe(cookieSent);
  }

  test('a form submit to the service is refused and creates nothing', async () => {
    const text = `form from ${host} ${RUN}`;
    const target = `${nginx!.url}/api/tracks/${TRACK.id}/comments`;
    await page.locator('input[name="content"]').fill(text);
    const [response] = await Promise.all([
      page.waitForResponse(isPostTo(target)),
      page.evaluate(() => (document.getElementById('f') as HTMLFormElement).submit()),
    ]);
    expectLabels(await response.request().allHeaders());
    expect(response.status()).toBe(403);
    expect(JSON.parse(await response.text())).toEqual({
      error: { code: 'cross_origin_request', message: expect.any(String) },
    });
    expect(await contents()).not.toContain(text);
  }, 60000);

  test('a fetch POST with credentials is refused and creates nothing', async () => {
    const text = `fetch from ${host} ${RUN}`;
    const target = `${nginx!.url}/api/tracks/${TRACK.id}/comments`;
    const refusedBefore = refusedPosts();
    const outcome = await page.evaluate(
      ([url, content]) =>
        fetch(url!, {
          method: 'POST',
          credentials: 'include',
          // A form-encoded body needs no CORS preflight: the request reaches the service,
          // which must refuse it itself (the browser only hides the answer from the page).
          body: new URLSearchParams({ content: content!, timestamp: '2' }),
        }).then(
          (r) => `answer ${r.status}`,
          (e: Error) => `blocked: ${e.name}`,
        ),
      [target, text],
    );
    // Not in CORS_ORIGINS: the page cannot read the answer, and Chromium reports neither the
    // answer nor the headers it sent to the test; nginx's access log shows the service's
    // answer. (The form test above shows which labels and cookie Chromium sends.)
    expect(outcome).toBe('blocked: TypeError');
    await waitFor(() => refusedPosts() === refusedBefore + 1, {
      timeoutMs: SLOW,
      what: 'nginx to log the refused POST',
    });
    expect(await contents()).not.toContain(text);
  }, 60000);
});

test('the demo page on the service origin keeps posting', async () => {
  const text = `from the demo page ${RUN}`;
  await demo.locator('[data-testid="comment-input"]').fill(text);
  const [response] = await Promise.all([
    demo.waitForResponse(isPostTo(`${nginx!.url}/api/tracks/${TRACK.id}/comments`)),
    demo.locator('[data-testid="comment-submit"]').click(),
  ]);
  expect((await response.request().allHeaders())['sec-fetch-site']).toBe('same-origin');
  expect(response.status()).toBe(201);
  await demo.locator('[data-testid="comment"]', { hasText: text }).waitFor({ state: 'visible' });
  expect(await contents()).toEqual([text]);
}, 60000);
