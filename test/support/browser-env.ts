import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type Locator,
  type Page,
} from 'playwright-core';
import { startNginx, type RunningNginx } from '../../harness/nginx';
import { adminPutOver, seedCatalog, userTokens } from '../../harness/catalog';
import type { RedisServer } from '../../harness/redis-server';
import { type Replica } from '../../harness/replica';
import { waitFor } from '../../harness/wait';
import { startStack } from './stack';
import type { TestDatabase } from '../../harness/test-db';

/**
 * A browser harness for the demo page: a fresh database, a private Redis, two replicas
 * (A and B), two nginx instances that pin each browser to one replica, and Chromium.
 *
 *   nginxA: upstream A, with B as `backup` (used only while A fails) — pages on A fail over to B
 *   nginxB: upstream B only
 *
 * least_conn over [A, B] would not say which replica a page lands on; this does.
 */

const ROOT = path.resolve(__dirname, '../..');
export const ARTIFACTS_DIR = path.join(ROOT, 'test-artifacts');
export const CHROMIUM_PATH = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/**
 * Debian's Chromium, headless, with what this closed network needs: no background
 * networking, sync or component updates (their connections are refused, many at a time).
 */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    timeout: 120000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
}

export const DEMO_USERS = {
  alice: { id: 1, username: 'alice', is_creator: true, is_team: false },
  bob: { id: 2, username: 'bob', is_creator: false, is_team: false },
  carol: { id: 3, username: 'carol', is_creator: false, is_team: true },
  dave: { id: 4, username: 'dave', is_creator: false, is_team: false },
} as const;
export type DemoUserName = keyof typeof DEMO_USERS;

/** alice created the album, so she may delete any comment on its tracks. */
export const DEMO_ALBUM = { id: 1, title: 'Night Drives', created_by_id: DEMO_USERS.alice.id };
export const DEMO_TRACKS = [
  { id: 'track-headlights', title: 'Headlights', duration_s: 180 },
  { id: 'track-overpass', title: 'Overpass', duration_s: 240 },
] as const;

/** One SSE event (or the EventSource's open/error) after the page's own handlers ran. */
export interface SseMessage {
  /** 'track' or 'me', from the stream URL. */
  stream: 'track' | 'me' | 'other';
  /** The SSE event name, or 'open' / 'error' for the EventSource's own events. */
  event: string;
  /** The parsed `data` (undefined for open/error). */
  data: Record<string, unknown> | undefined;
  /** Node clock (ms epoch) when the test process heard of it. */
  at: number;
  /** Page clock (ms epoch, same host) when the EventSource dispatched it. */
  pageAt: number;
}

export interface DemoPage {
  name: string;
  context: BrowserContext;
  page: Page;
  /** Console messages of type error, in order. */
  consoleErrors: string[];
  /** Uncaught exceptions in the page. */
  pageErrors: string[];
  /** Every SSE message the page received, from all its EventSources. */
  sse: SseMessage[];
  byTestId(testId: string): Locator;
  /** The comment list item(s) with this id. */
  comment(id: number): Locator;
  /** The comment list item(s) whose text contains `text`. */
  commentWithText(text: string): Locator;
  marker(id: number): Locator;
  /** Chooses the user in the page's user select, and waits until both streams are connected. */
  signIn(user: DemoUserName): Promise<void>;
  /** Resolves with the first SSE message matching `match` (already received or arriving later). */
  waitForSse(match: (m: SseMessage) => boolean, timeoutMs?: number): Promise<SseMessage>;
  /** Texts the connection-state badge has shown, in order, with when (page clock, ms epoch). */
  connectionStates(): Promise<{ text: string; at: number }[]>;
  /** Texts of every toast ever shown (they remove themselves after 8 s). */
  toastsShown(): Promise<string[]>;
  /** `securitypolicyviolation` events seen by the document. */
  cspViolations(): Promise<string[]>;
}

export interface ApiResult {
  status: number;
  text: string;
  json: unknown;
}

export interface BrowserEnv {
  db: TestDatabase;
  redis: RedisServer;
  a: Replica;
  b: Replica;
  /** In front of A, with B as backup. */
  nginxA: RunningNginx;
  /** In front of B only. */
  nginxB: RunningNginx;
  browser: Browser;
  pages: DemoPage[];
  tokens: Record<DemoUserName, string>;
  /** A REST call with a user's bearer token (or none). */
  api(
    base: string,
    method: string,
    urlPath: string,
    opts?: { user?: DemoUserName; body?: unknown },
  ): Promise<ApiResult>;
  /** A new browser context (own cookies) on `via`, with `trackId` open, signed in as `user`. */
  openPage(opts: {
    name: string;
    user: DemoUserName;
    via: RunningNginx;
    trackId: string;
  }): Promise<DemoPage>;
  /** Screenshots of every open page into test-artifacts/browser-<label>-<page>.png. */
  screenshotAll(label: string): Promise<string[]>;
  /** Closes the browser, both nginx, both replicas, Redis, and drops the database. Idempotent. */
  close(): Promise<void>;
}

/**
 * Compiles the browser client and the demo page into public/build/ when the page's entry is
 * missing or older than any source the browser build compiles (src/client, src/events).
 */
export function ensureClientBuilt(): void {
  const built = path.join(ROOT, 'public/build/client/demo/main.js');
  const newestSource = Math.max(
    ...['src/client', 'src/events'].flatMap((dir) =>
      fs
        .readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
        .filter((name) => name.endsWith('.ts'))
        .map((name) => fs.statSync(path.join(ROOT, dir, name)).mtimeMs),
    ),
  );
  if (fs.existsSync(built) && fs.statSync(built).mtimeMs >= newestSource) return;
  const result = spawnSync(
    process.execPath,
    [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.client.json'],
    { cwd: ROOT, encoding: 'utf8', timeout: 120000 },
  );
  if (result.status !== 0) {
    throw new Error(`building the browser client failed:\n${result.stdout}${result.stderr}`);
  }
}

/**
 * Runs in every document before the page's own scripts: records what appears only briefly
 * (connection states, toasts) and CSP violations, so tests can assert on them afterwards.
 */
const PAGE_PROBES = `(() => {
  window.__probe = { states: [], toasts: [], csp: [] };
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__probe.csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sourceFile || ''));
  });
  const seenToasts = new WeakSet();
  let lastState = null;
  const scan = () => {
    const conn = document.querySelector('[data-testid="connection-state"]');
    if (conn && conn.textContent !== lastState) {
      lastState = conn.textContent;
      window.__probe.states.push({ text: lastState, at: Date.now() });
    }
    for (const t of document.querySelectorAll('[data-testid="toast"]')) {
      if (!seenToasts.has(t)) {
        seenToasts.add(t);
        window.__probe.toasts.push(t.textContent);
      }
    }
  };
  new MutationObserver(scan).observe(document, { childList: true, subtree: true, characterData: true });
  // Reports each stream event to the test once the page's own listeners have run (the report
  // is a task queued from the dispatch), so "handled" can be awaited without sleeping.
  const Native = window.EventSource;
  const names = ['open', 'error', 'connected', 'new_comment', 'comment_edited',
    'comment_deleted', 'user_typing', 'mention', 'reset'];
  window.EventSource = class ProbedEventSource extends Native {
    constructor(url, init) {
      super(url, init);
      for (const name of names) {
        this.addEventListener(name, (e) => {
          const data = typeof e.data === 'string' ? e.data : null;
          const at = Date.now();
          setTimeout(() => window.__probeSse(String(url), name, data, at), 0);
        });
      }
    }
  };
})();`;

function streamOf(url: string): SseMessage['stream'] {
  const p = new URL(url, 'http://x').pathname;
  if (p === '/api/me/events') return 'me';
  if (/^\/api\/tracks\/[^/]+\/events$/.test(p)) return 'track';
  return 'other';
}

export async function startBrowserEnv(): Promise<BrowserEnv> {
  ensureClientBuilt();
  fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const stack = await startStack({
    replicas: 2,
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
  const proxies: RunningNginx[] = [];
  let browser: Browser | undefined;
  const pages: DemoPage[] = [];
  stack.beforeReplicasStop(async () => {
    if (browser) await withTimeout(browser.close(), 20000, 'closing chromium');
  });
  stack.beforeReplicasStop(async () => {
    const errors: unknown[] = [];
    for (const p of proxies) await p.stop().catch((e) => errors.push(e));
    if (errors.length > 0) throw errors[0];
  });

  try {
    const [a, b] = stack.replicas as [Replica, Replica];
    const tokens = await userTokens(DEMO_USERS);

    const api: BrowserEnv['api'] = async (base, method, urlPath, o = {}) => {
      const headers: Record<string, string> = { Accept: 'application/json' };
      if (o.user) headers.Authorization = `Bearer ${tokens[o.user]}`;
      if (o.body !== undefined) headers['Content-Type'] = 'application/json';
      const res = await fetch(`${base}${urlPath}`, {
        method,
        headers,
        body: o.body === undefined ? undefined : JSON.stringify(o.body),
        signal: AbortSignal.timeout(20000),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: res.status, text, json };
    };

    await seedCatalog(
      adminPutOver(() => a.url),
      { users: DEMO_USERS, album: DEMO_ALBUM, tracks: DEMO_TRACKS },
    );

    proxies.push(
      await startNginx({
        upstreams: [`127.0.0.1:${a.port}`],
        backupUpstreams: [`127.0.0.1:${b.port}`],
      }),
    );
    proxies.push(await startNginx({ upstreams: [`127.0.0.1:${b.port}`] }));
    const [nginxA, nginxB] = proxies as [RunningNginx, RunningNginx];

    browser = await launchChromium();
    const theBrowser = browser;

    const openPage: BrowserEnv['openPage'] = async ({ name, user, via, trackId }) => {
      const context = await theBrowser.newContext({ viewport: { width: 1100, height: 800 } });
      const page = await context.newPage();
      page.setDefaultTimeout(30000);
      const demo: DemoPage = {
        name,
        context,
        page,
        consoleErrors: [],
        pageErrors: [],
        sse: [],
        byTestId: (testId) => page.locator(`[data-testid="${testId}"]`),
        comment: (id) => page.locator(`[data-testid="comment"][data-comment-id="${id}"]`),
        commentWithText: (text) => page.locator('[data-testid="comment"]', { hasText: text }),
        marker: (id) => page.locator(`[data-testid="timeline-marker"][data-comment-id="${id}"]`),
        async signIn(who) {
          const since = demo.sse.length;
          const connectedOn = (stream: SseMessage['stream']) => (m: SseMessage) =>
            m.stream === stream && m.event === 'connected';
          await page
            .locator('[data-testid="user-select"]')
            .selectOption(String(DEMO_USERS[who].id));
          const fresh = (pred: (m: SseMessage) => boolean) => (m: SseMessage) =>
            demo.sse.indexOf(m) >= since && pred(m);
          // Both streams answered `connected`: the server holds this user's subscriptions.
          await demo.waitForSse(fresh(connectedOn('me')), 30000);
          await demo.waitForSse(fresh(connectedOn('track')), 30000);
          await page
            .locator('[data-testid="connection-state"]', { hasText: /^live$/ })
            .waitFor({ timeout: 30000 });
          await page.locator('[data-testid="comment-input"]:not([disabled])').waitFor();
        },
        async waitForSse(match, timeoutMs = 15000) {
          let found: SseMessage | undefined;
          await waitFor(() => (found = demo.sse.find(match)) !== undefined, {
            timeoutMs,
            intervalMs: 20,
            what: `an SSE message on ${name}'s page`,
          });
          return found!;
        },
        connectionStates: () => page.evaluate(() => (window as unknown as Probed).__probe.states),
        toastsShown: () => page.evaluate(() => (window as unknown as Probed).__probe.toasts),
        cspViolations: () => page.evaluate(() => (window as unknown as Probed).__probe.csp),
      };
      page.on('console', (msg) => {
        if (msg.type() === 'error') demo.consoleErrors.push(msg.text());
      });
      page.on('pageerror', (err) => demo.pageErrors.push(String(err)));
      pages.push(demo);
      await page.exposeFunction(
        '__probeSse',
        (url: string, event: string, data: string | null, pageAt: number) => {
          let parsed: Record<string, unknown> | undefined;
          try {
            parsed = data === null ? undefined : (JSON.parse(data) as Record<string, unknown>);
          } catch {
            parsed = { unparseable: data };
          }
          demo.sse.push({ stream: streamOf(url), event, data: parsed, at: Date.now(), pageAt });
        },
      );
      await page.addInitScript(PAGE_PROBES);

      await page.goto(`${via.url}/#track=${encodeURIComponent(trackId)}`, {
        waitUntil: 'load',
        timeout: 60000,
      });
      // init() done: the user list is in and the track chosen from the hash.
      await waitFor(
        async () =>
          (await page.locator('[data-testid="user-select"] option').count()) > 1 &&
          (await page.locator('[data-testid="track-select"]').inputValue()) === trackId,
        { timeoutMs: 30000, intervalMs: 100, what: `${name}'s page to load its users and tracks` },
      );
      await demo.signIn(user);
      return demo;
    };

    const screenshotAll: BrowserEnv['screenshotAll'] = async (label) => {
      const files: string[] = [];
      for (const p of pages) {
        if (p.page.isClosed()) continue;
        const file = path.join(ARTIFACTS_DIR, `browser-${safeName(label)}-${safeName(p.name)}.png`);
        await p.page.screenshot({ path: file, fullPage: true, timeout: 20000 });
        files.push(file);
      }
      return files;
    };

    return {
      db: stack.db,
      redis: stack.redis,
      a,
      b,
      nginxA,
      nginxB,
      browser,
      pages,
      tokens,
      api,
      openPage,
      screenshotAll,
      close: stack.close,
    };
  } catch (err) {
    await stack.close().catch(() => undefined);
    throw err;
  }
}

interface Probed {
  __probe: { states: { text: string; at: number }[]; toasts: string[]; csp: string[] };
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-|-$/g, '');
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
