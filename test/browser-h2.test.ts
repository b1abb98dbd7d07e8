import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { adminPutOver, seedCatalog, userTokens } from '../harness/catalog';
import { startNginx, type RunningNginx } from '../harness/nginx';
import type { Replica } from '../harness/replica';
import { waitFor } from '../harness/wait';
import {
  ARTIFACTS_DIR,
  launchChromium,
  DEMO_ALBUM,
  DEMO_TRACKS,
  DEMO_USERS,
  ensureClientBuilt,
} from './support/browser-env';
import { startStack, type Stack } from './support/stack';

/**
 * Many tabs of the demo page in one browser (issue 12): Chromium keeps one connection pool per
 * origin, and every open EventSource holds a connection. Through nginx with TLS + HTTP/2 in
 * front of two real replicas, 8 tabs each hold their track stream and their personal stream
 * (16 streams) on one connection. Over plain HTTP/1.1 the same tabs run into the browser's
 * 6 connections per origin: the 4th tab's page load waits until a stream closes.
 *
 * The page normally shares one personal stream across tabs (Web Locks); here every tab opens
 * its own (navigator.locks removed), which is the case the issue describes and the worst one.
 * Numbers seen go to test-artifacts/browser-h2-report.json.
 */

const RUN = randomBytes(3).toString('hex');
const TRACK = DEMO_TRACKS[0];
const USER = DEMO_USERS.bob;
const TABS = 8;
const SLOW = 60000;

/**
 * Before the page's scripts: no Web Locks (so no stream sharing), and a record of every
 * EventSource and the events the test waits for.
 */
const TAB_PROBE = `(() => {
  Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined, configurable: true });
  window.__sources = [];
  window.__events = [];
  const Native = window.EventSource;
  window.EventSource = class ProbedEventSource extends Native {
    constructor(url, init) {
      super(url, init);
      window.__sources.push(this);
      for (const name of ['connected', 'new_comment', 'mention']) {
        this.addEventListener(name, (e) => window.__events.push({ url: String(url), event: name, data: e.data }));
      }
    }
  };
})();`;

interface TabView {
  /** Paths of this tab's EventSources that are open right now. */
  open: string[];
  events: { url: string; event: string; data: string }[];
  /** The document's negotiated protocol ('h2', 'http/1.1'). */
  protocol: string;
}

const view = (page: Page): Promise<TabView> =>
  page.evaluate(() => {
    const w = window as unknown as {
      __sources: EventSource[];
      __events: TabView['events'];
    };
    const nav = performance.getEntries()[0] as PerformanceNavigationTiming | undefined;
    return {
      open: w.__sources
        .filter((s) => s.readyState === EventSource.OPEN)
        .map((s) => new URL(s.url).pathname),
      events: w.__events,
      protocol: nav?.nextHopProtocol ?? '',
    };
  });

const TRACK_STREAM = `/api/tracks/${TRACK.id}/events`;
const ME_STREAM = '/api/me/events';

/** Both of the tab's own streams are open and said `connected`. */
async function bothStreamsLive(page: Page): Promise<boolean> {
  const v = await view(page);
  const connected = new Set(v.events.filter((e) => e.event === 'connected').map((e) => e.url));
  return (
    v.open.includes(TRACK_STREAM) &&
    v.open.includes(ME_STREAM) &&
    [...connected].some((u) => u.includes(TRACK_STREAM)) &&
    [...connected].some((u) => u.includes(ME_STREAM))
  );
}

let stack: Stack | undefined;
let browser: Browser | undefined;
const proxies: RunningNginx[] = [];
const report: Record<string, unknown> = {};

beforeAll(async () => {
  ensureClientBuilt();
  stack = await startStack({
    replicas: 2,
    env: {
      DEMO_PAGE: 'true',
      NODE_ENV: 'test',
      TRUST_PROXY: 'loopback',
      LOG_LEVEL: 'warn',
      DRAIN_SPREAD_MS: '0',
      SHUTDOWN_TIMEOUT_MS: '3000',
      // 16 streams of one user here, and the HTTP/1.1 part's while the others wind down.
      MAX_STREAMS_PER_USER: '40',
    },
    replicaTimeoutMs: 90000,
    killAfterMs: 8000,
    debugVar: 'BROWSER_DEBUG',
  });
  stack.beforeReplicasStop(() => browser?.close());
  stack.beforeReplicasStop(async () => {
    for (const p of proxies) await p.stop();
  });
  const [a, b] = stack.replicas as [Replica, Replica];
  await seedCatalog(
    adminPutOver(() => a.url),
    { users: DEMO_USERS, album: DEMO_ALBUM, tracks: DEMO_TRACKS },
  );
  const upstreams = [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`];
  proxies.push(await startNginx({ upstreams, tls: true }));
  proxies.push(await startNginx({ upstreams }));
  browser = await launchChromium([
    // The test's self-signed certificate (made by the nginx harness).
    '--ignore-certificate-errors',
  ]);
}, 300000);

afterAll(async () => {
  fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
  fs.writeFileSync(
    path.join(ARTIFACTS_DIR, 'browser-h2-report.json'),
    JSON.stringify(report, null, 2),
  );
  await stack?.close();
}, 120000);

/** One browser context (= one connection pool, one cookie jar) for a group of tabs. */
async function newTabsContext(): Promise<BrowserContext> {
  const context = await browser!.newContext({ viewport: { width: 1000, height: 700 } });
  await context.addInitScript(TAB_PROBE);
  return context;
}

/** Opens the demo page in a new tab of `context`; resolves when the document has loaded. */
async function openTab(context: BrowserContext, base: string): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(SLOW);
  await page.goto(`${base}/#track=${encodeURIComponent(TRACK.id)}`, { waitUntil: 'load' });
  return page;
}

/** Signs the context in as USER from `page` (the cookie then serves every later tab). */
async function signIn(page: Page): Promise<void> {
  await waitFor(
    async () => (await page.locator('[data-testid="user-select"] option').count()) > 1,
    {
      timeoutMs: SLOW,
      intervalMs: 100,
      what: 'the user list',
    },
  );
  await page.locator('[data-testid="user-select"]').selectOption(String(USER.id));
}

async function waitLive(page: Page, what: string): Promise<void> {
  await waitFor(() => bothStreamsLive(page), { timeoutMs: SLOW, intervalMs: 100, what });
}

test('HTTP/2 + TLS: 8 tabs hold 16 live streams on one connection; a comment reaches all 8', async () => {
  const nginx = proxies[0]!;
  const context = await newTabsContext();
  try {
    const tabs: Page[] = [];
    const loadMs: number[] = [];
    for (let i = 0; i < TABS; i++) {
      const t0 = Date.now();
      const page = await openTab(context, nginx.url);
      loadMs.push(Date.now() - t0);
      if (i === 0) await signIn(page);
      await waitLive(page, `tab ${i + 1}'s two streams`);
      tabs.push(page);
    }
    report.h2 = { tabs: TABS, pageLoadMs: loadMs };

    // All 16 at once: each tab still has both of its own streams open.
    const views = await Promise.all(tabs.map(view));
    expect(views.map((v) => v.open.sort())).toEqual(
      tabs.map(() => [ME_STREAM, TRACK_STREAM].sort()),
    );
    expect(views.map((v) => v.protocol)).toEqual(tabs.map(() => 'h2'));

    // Posted from the last tab's composer; every tab's track stream delivers it.
    const text = `eight tabs ${RUN}`;
    const last = tabs[TABS - 1]!;
    await last.locator('[data-testid="comment-input"]:not([disabled])').fill(text);
    await last.locator('[data-testid="comment-submit"]').click();
    for (const [i, page] of tabs.entries()) {
      await waitFor(
        async () =>
          (await view(page)).events.some(
            (e) =>
              e.event === 'new_comment' && e.url.includes(TRACK_STREAM) && e.data.includes(text),
          ),
        { timeoutMs: SLOW, intervalMs: 100, what: `the comment on tab ${i + 1}` },
      );
      await page.locator('[data-testid="comment"]', { hasText: text }).first().waitFor();
    }

    // A mention of USER reaches every tab's personal stream.
    const tokens = await userTokens(DEMO_USERS);
    const mention = `@${USER.username} look ${RUN}`;
    const res = await fetch(`${stack!.replicas[0]!.url}/api/tracks/${TRACK.id}/comments`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${tokens.alice}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ content: mention, timestamp: 3 }),
    });
    expect(res.status).toBe(201);
    for (const [i, page] of tabs.entries()) {
      await waitFor(
        async () =>
          (await view(page)).events.some(
            (e) => e.event === 'mention' && e.url.includes(ME_STREAM) && e.data.includes(RUN),
          ),
        { timeoutMs: SLOW, intervalMs: 100, what: `the mention on tab ${i + 1}` },
      );
    }
  } finally {
    await context.close();
  }
}, 420000);

test('HTTP/1.1: after 3 tabs (6 streams) the 4th tab cannot even load until a stream closes', async () => {
  const nginx = proxies[1]!;
  const context = await newTabsContext();
  const other = await browser!.newContext();
  try {
    const tabs: Page[] = [];
    for (let i = 0; i < 3; i++) {
      const page = await openTab(context, nginx.url);
      if (i === 0) await signIn(page);
      await waitLive(page, `tab ${i + 1}'s two streams`);
      tabs.push(page);
    }
    expect((await view(tabs[0]!)).protocol).toBe('http/1.1');

    // Tab 4: the document request is issued, but the pool's 6 connections are all streams.
    const fourth = await context.newPage();
    let answered = 0;
    fourth.on('response', () => answered++);
    const issued = fourth.waitForRequest((r) => r.resourceType() === 'document', { timeout: SLOW });
    const t0 = Date.now();
    const loading = fourth.goto(`${nginx.url}/#track=${encodeURIComponent(TRACK.id)}`, {
      waitUntil: 'load',
      timeout: 180000,
    });
    loading.catch(() => undefined);
    await issued;
    // Meanwhile the server answers others at once: another context (its own pool) loads the page.
    const control = await other.newPage();
    await control.goto(`${nginx.url}/`, { waitUntil: 'load', timeout: SLOW });
    expect(answered).toBe(0);
    expect(await Promise.all(tabs.map(bothStreamsLive))).toEqual([true, true, true]);

    // Closing tab 1 frees its two connections: tab 4 loads and goes live.
    const stalledMs = Date.now() - t0;
    await tabs[0]!.close();
    await loading;
    await waitLive(fourth, "tab 4's two streams after tab 1 closed");
    expect(answered).toBeGreaterThan(0);
    report.http1 = {
      liveTabsBeforeStall: 3,
      fourthTabStalledAtLeastMs: stalledMs,
      fourthTabLoadedAfterTab1ClosedMs: Date.now() - t0 - stalledMs,
    };
  } finally {
    await other.close();
    await context.close();
  }
}, 420000);
