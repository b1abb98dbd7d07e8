import path from 'node:path';
import { type Browser, type BrowserContext, type Page, type Route } from 'playwright-core';
import { adminPutOver, seedCatalog, userTokens } from '../harness/catalog';
import type { Replica } from '../harness/replica';
import { waitFor, waitForValue } from '../harness/wait';
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
 * Issue 12, "tabs over plain HTTP/1.1 must not hang": five tabs of the demo page in one
 * Chromium profile (one origin, one pool of at most 6 HTTP/1.1 connections), straight to one
 * replica, three tabs on one track and two on the other. The tabs share one personal stream
 * and one stream per track (src/client/shared-stream.ts): 3 connections instead of 10, and
 * every page loads its comments. (Sharing only the personal stream would make 5 + 1 = 6: the
 * fifth tab's comment snapshot then waits for a free connection for as long as the streams
 * stay open.) A mention posted over REST by bob reaches every tab exactly once; when the
 * leading tab closes, other tabs take over, resuming after the last id, and a mention
 * committed while no tab held the personal stream still arrives, once, everywhere.
 */

const TABS = 5;
const TRACK = DEMO_TRACKS[0];
/** The track each tab opens: the first, third and fifth on TRACK. */
const trackOfTab = (i: number) => DEMO_TRACKS[i % 2]!;
const SLOW = 60000;

/** Records, from before the page's scripts run, the streams the page opens and the toasts it shows. */
const TAB_PROBES = `(() => {
  window.__tabs = { streams: [], toasts: [] };
  const Native = window.EventSource;
  window.EventSource = class extends Native {
    constructor(url, init) { super(url, init); window.__tabs.streams.push(String(url)); }
  };
  const seen = new WeakSet();
  new MutationObserver(() => {
    for (const t of document.querySelectorAll('[data-testid="toast"]')) {
      if (!seen.has(t)) { seen.add(t); window.__tabs.toasts.push(t.textContent); }
    }
  }).observe(document, { childList: true, subtree: true });
})();`;

interface TabProbe {
  streams: string[];
  toasts: string[];
}

let stack: Stack | undefined;
let browser: Browser | undefined;
let context: BrowserContext;
let replica: Replica;
let tokens: Record<keyof typeof DEMO_USERS, string>;
const tabs: Page[] = [];
const figures: Record<string, unknown> = {};

const probe = (page: Page) =>
  page.evaluate(() => (window as unknown as { __tabs: TabProbe }).__tabs);
const personalStreams = (p: TabProbe) =>
  p.streams.filter((u) => new URL(u, 'http://x').pathname === '/api/me/events');
const trackStreams = (p: TabProbe) => p.streams.filter((u) => !personalStreams(p).includes(u));

/** bob comments on alice's track, naming her; returns the text the toasts carry. */
async function mentionAlice(label: string): Promise<string> {
  const content = `@alice ${label}`;
  const res = await fetch(`${replica.url}/api/tracks/${TRACK.id}/comments`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${tokens.bob}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ content, timestamp: 3 }),
    signal: AbortSignal.timeout(20000),
  });
  if (res.status !== 201) throw new Error(`POST comment: ${res.status} ${await res.text()}`);
  return label;
}

/** Waits until every page showed a toast for each label, then checks each showed it once. */
async function expectEachOnce(pages: Page[], labels: string[], what: string): Promise<void> {
  const count = (toasts: string[], label: string) =>
    toasts.filter((t) => t.endsWith(`@alice ${label}`)).length;
  await waitFor(
    async () => {
      for (const p of pages) {
        const { toasts } = await probe(p);
        if (labels.some((l) => count(toasts, l) === 0)) return false;
      }
      return true;
    },
    { timeoutMs: SLOW, intervalMs: 100, what },
  );
  for (const [i, p] of pages.entries()) {
    const { toasts } = await probe(p);
    expect({ tab: i, counts: labels.map((l) => count(toasts, l)) }).toEqual({
      tab: i,
      counts: labels.map(() => 1),
    });
  }
}

/** The page loaded its users, tracks and comment snapshot, and its track stream is live. */
async function expectLoadedAndLive(page: Page): Promise<void> {
  await page.locator('[data-testid="connection-state"]', { hasText: /^live$/ }).waitFor();
  await page
    .locator('[data-testid="comments-empty"]:visible, [data-testid="comment"]')
    .first()
    .waitFor();
  await page.locator('[data-testid="comment-input"]:not([disabled])').waitFor();
}

async function openTab(): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(SLOW);
  await page.addInitScript(TAB_PROBES);
  const track = trackOfTab(tabs.length);
  tabs.push(page);
  const started = Date.now();
  await page.goto(`${replica.url}/#track=${encodeURIComponent(track.id)}`, {
    waitUntil: 'load',
    timeout: SLOW,
  });
  figures[`tab${tabs.length}LoadMs`] = Date.now() - started;
  return page;
}

beforeAll(async () => {
  ensureClientBuilt();
  stack = await startStack({
    replicas: 1,
    env: { DEMO_PAGE: 'true', NODE_ENV: 'test', LOG_LEVEL: 'warn', SHUTDOWN_TIMEOUT_MS: '3000' },
    replicaTimeoutMs: 90000,
    killAfterMs: 8000,
    debugVar: 'BROWSER_DEBUG',
  });
  stack.beforeReplicasStop(async () => {
    await browser?.close();
  });
  replica = stack.replicas[0]!;
  tokens = await userTokens(DEMO_USERS);
  await seedCatalog(
    adminPutOver(() => replica.url),
    { users: DEMO_USERS, album: DEMO_ALBUM, tracks: DEMO_TRACKS },
  );
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
}, 300000);

afterAll(async () => {
  await stack?.close();
}, 120000);

test('five tabs over HTTP/1.1 share their streams, all load, and survive the leader closing', async () => {
  try {
    // The first tab signs in (the cookie then holds for the whole profile).
    const first = await openTab();
    await first
      .locator('[data-testid="user-select"] option[value="1"]')
      .waitFor({ state: 'attached' });
    await first.locator('[data-testid="user-select"]').selectOption('1');
    await expectLoadedAndLive(first);
    for (let i = 1; i < TABS; i++) await expectLoadedAndLive(await openTab());

    // One tab opened the personal stream, and one tab each track's stream.
    const probes = await Promise.all(tabs.map(probe));
    figures.streamsPerTab = probes.map((p) => p.streams.length);
    expect(probes.flatMap(personalStreams)).toHaveLength(1);
    expect(
      probes
        .flatMap(trackStreams)
        .map((u) => new URL(u, replica.url).pathname)
        .sort(),
    ).toEqual(DEMO_TRACKS.map((t) => `/api/tracks/${t.id}/events`).sort());

    const before = [await mentionAlice('one'), await mentionAlice('two')];
    await expectEachOnce(tabs, before, 'the first mentions in every tab');
    // The mentions are comments on TRACK too: the list of every tab on it has them.
    const onTrack = tabs.filter((_, i) => trackOfTab(i) === TRACK);
    for (const page of onTrack)
      await page.locator('[data-testid="comment"]', { hasText: '@alice two' }).waitFor();

    // Hold the next personal stream request until a mention was committed without any.
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const held: string[] = [];
    await context.route('**/api/me/events*', async (route: Route) => {
      held.push(route.request().url());
      await gate;
      await route.continue();
    });

    const leaderAt = probes.findIndex((p) => personalStreams(p).length === 1);
    const leader = tabs[leaderAt]!;
    const rest = tabs.filter((t) => t !== leader);
    await leader.close();
    const resumeUrl = await waitForValue(() => held[0], {
      timeoutMs: SLOW,
      what: 'another tab to open the personal stream',
    });
    figures.resumeUrl = resumeUrl;
    expect(new URL(resumeUrl).searchParams.get('last_event_id')).toMatch(/^\d+$/);
    const during = await mentionAlice('while no tab listened');
    openGate();
    const after = await mentionAlice('three');
    await expectEachOnce(rest, [...before, during, after], 'the mentions after the handover');

    // One remaining tab took the personal stream over; TRACK's stream moved on with it too.
    const restProbes = await Promise.all(rest.map(probe));
    expect(restProbes.flatMap(personalStreams)).toHaveLength(1);
    expect(held).toHaveLength(1);
    for (const page of onTrack.filter((t) => t !== leader))
      await page.locator('[data-testid="comment"]', { hasText: '@alice three' }).waitFor();
  } catch (err) {
    for (const [i, page] of tabs.entries()) {
      if (page.isClosed()) continue;
      await page
        .screenshot({ path: path.join(ARTIFACTS_DIR, `browser-tabs-FAILED-${i}.png`) })
        .catch(() => undefined);
    }
    throw err;
  } finally {
    process.stdout.write(`browser-tabs figures: ${JSON.stringify(figures)}\n`);
  }
}, 420000);
