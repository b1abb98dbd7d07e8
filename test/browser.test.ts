import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Locator } from 'playwright-core';
import {
  ARTIFACTS_DIR,
  DEMO_TRACKS,
  startBrowserEnv,
  type BrowserEnv,
  type DemoPage,
  type SseMessage,
} from './support/browser-env';
import { waitFor } from '../harness/wait';

/**
 * The demo page in Chromium against two real replicas behind nginx (issue 5, item 4).
 * alice's page goes through an nginx whose only primary is replica A; bob's and the third
 * page's through an nginx that knows only B — so every live update alice sees from bob
 * crossed Redis pub/sub between the two replicas.
 *
 * Timeouts are generous (the machine is shared and loaded) except the 1-second delivery
 * check, which is the issue's own claim. Screenshots: test-artifacts/browser-*.png.
 */

const RUN = randomBytes(3).toString('hex');
const TRACK = DEMO_TRACKS[0];
const SLOW = 30000;

let env: BrowserEnv | undefined;
let alice: DemoPage;
let bob: DemoPage;
/** Opened in scenario 2 as dave, later switched to carol (team). */
let third: DemoPage | undefined;
const timings: Record<string, number> = {};

function theEnv(): BrowserEnv {
  if (!env) throw new Error('environment not started');
  return env;
}

/** A test that leaves a screenshot of every page behind: as evidence, or of the failure. */
function scenario(name: string, body: () => Promise<void>, timeoutMs = 180000): void {
  test(
    name,
    async () => {
      const label = name.split(':')[0]!;
      try {
        await body();
      } catch (err) {
        await env?.screenshotAll(`FAILED-${label}`).catch(() => undefined);
        throw err;
      }
      await theEnv().screenshotAll(label);
    },
    timeoutMs,
  );
}

/** One page's screenshot in the middle of a scenario (the scenario's end takes all pages). */
async function snapshot(p: DemoPage, label: string): Promise<void> {
  await p.page.screenshot({
    path: path.join(ARTIFACTS_DIR, `browser-${label}-${p.name}.png`),
    timeout: SLOW,
  });
}

const isNewComment = (id: number) => (m: SseMessage) =>
  m.stream === 'track' &&
  m.event === 'new_comment' &&
  (m.data?.comment as { id?: number } | undefined)?.id === id;

async function expectCount(locator: Locator, n: number, what: string, timeoutMs = SLOW) {
  let last = -1;
  await waitFor(async () => (last = await locator.count()) === n, {
    timeoutMs,
    intervalMs: 50,
    what: `${what} to number ${n}`,
  }).catch((err: Error) => {
    throw new Error(`${err.message} (last count: ${last})`);
  });
}

async function textOf(locator: Locator): Promise<string> {
  return ((await locator.textContent({ timeout: SLOW })) ?? '').trim();
}

async function idOf(item: Locator): Promise<number> {
  const raw = await item.getAttribute('data-comment-id', { timeout: SLOW });
  const id = Number(raw);
  if (!Number.isInteger(id) || id <= 0) throw new Error(`bad data-comment-id: ${raw}`);
  return id;
}

/** Posts as `user` through an nginx (REST with a bearer token, not through a page). */
async function apiComment(
  via: string,
  user: 'bob' | 'dave',
  content: string,
  timestamp: number,
): Promise<number> {
  const res = await theEnv().api(via, 'POST', `/api/tracks/${TRACK.id}/comments`, {
    user,
    body: { content, timestamp },
  });
  if (res.status !== 201) throw new Error(`POST comment: ${res.status} ${res.text}`);
  return (res.json as { comment: { id: number } }).comment.id;
}

beforeAll(async () => {
  env = await startBrowserEnv();
  alice = await env.openPage({ name: 'alice', user: 'alice', via: env.nginxA, trackId: TRACK.id });
  bob = await env.openPage({ name: 'bob', user: 'bob', via: env.nginxB, trackId: TRACK.id });
}, 420000);

afterAll(async () => {
  try {
    if (env) {
      fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
      fs.writeFileSync(
        path.join(ARTIFACTS_DIR, 'browser-report.json'),
        JSON.stringify(
          {
            timingsMs: timings,
            pages: await Promise.all(
              env.pages.map(async (p) => ({
                name: p.name,
                consoleErrors: p.consoleErrors,
                pageErrors: p.pageErrors,
                connectionStates: (await p.connectionStates().catch(() => [])).map((s) => s.text),
              })),
            ),
          },
          null,
          2,
        ),
      );
    }
  } finally {
    await env?.close();
  }
}, 180000);

scenario(
  '1-deliver: bob comments at the current position; alice (other replica) sees it within 1 s, once',
  async () => {
    // bob moves the simulated player to 0:15 (three 5-second steps on the timeline).
    for (let i = 0; i < 3; i++) await bob.byTestId('timeline').press('ArrowRight');
    expect(await textOf(bob.byTestId('position'))).toMatch(/^0:15 \//);
    expect(await textOf(bob.byTestId('compose-position'))).toBe('at 0:15');

    const text = `first take ${RUN}`;
    await bob.byTestId('comment-input').fill(text);
    const onAlice = alice.commentWithText(text);
    expect(await onAlice.count()).toBe(0);

    const posted = bob.page.waitForResponse(
      (r) =>
        r.request().method() === 'POST' && r.url().endsWith(`/api/tracks/${TRACK.id}/comments`),
      { timeout: SLOW },
    );
    // A raw mouse click on the Post button: the clock starts with the click itself, not with
    // Playwright's actionability checks (which take hundreds of ms on a loaded machine).
    const submit = bob.byTestId('comment-submit');
    await submit.scrollIntoViewIfNeeded();
    const box = await submit.boundingBox();
    if (!box) throw new Error('the Post button is not laid out');
    const t0 = Date.now();
    const click = bob.page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    let latency: number;
    try {
      await onAlice.waitFor({ state: 'visible', timeout: 1000 });
      latency = Date.now() - t0;
    } catch {
      await onAlice.waitFor({ state: 'visible', timeout: SLOW }).catch(() => undefined);
      latency = Date.now() - t0;
      await click.catch(() => undefined);
      timings.deliveryFromClick = latency;
      throw new Error(
        `bob's comment reached alice's page ${latency} ms after the click (claim: 1 s)`,
      );
    }
    await click;
    timings.deliveryFromClick = latency;

    const id = await idOf(onAlice);
    // Where the time went, for the report (all clocks are this host's).
    const response = await posted;
    const rt = response.request().timing();
    const created = ((await response.json()) as { comment: { id: number; created_at: string } })
      .comment;
    expect(created.id).toBe(id);
    const handled = await alice.waitForSse(isNewComment(id), SLOW);
    Object.assign(timings, {
      deliveryPostSentAfterClick: Math.round(rt.startTime - t0),
      deliveryCommentCreatedAfterClick: Date.parse(created.created_at) - t0,
      deliveryPostAnsweredAfterClick: Math.round(rt.startTime + rt.responseStart - t0),
      deliveryEventOnAlicePageAfterClick: handled.pageAt - t0,
    });
    const item = alice.comment(id);
    expect(await textOf(item.locator('[data-testid="comment-author"]'))).toBe('bob');
    expect(await textOf(item.locator('[data-testid="comment-timestamp"]'))).toBe('0:15');
    expect(await textOf(item.locator('[data-testid="comment-content"]'))).toBe(text);
    // The timeline marker, at 15 s of the 180 s track.
    const marker = alice.marker(id);
    await expectCount(marker, 1, "alice's marker for bob's comment");
    expect(await marker.getAttribute('title')).toBe(`0:15 bob: ${text}`);
    const left = parseFloat((await marker.evaluate((m) => (m as HTMLElement).style.left)) || 'NaN');
    expect(left).toBeCloseTo((15 / TRACK.duration_s) * 100, 3);

    // Exactly once: both pages have handled the stream's copy (bob also had the POST answer).
    await bob.waitForSse(isNewComment(id), SLOW);
    for (const p of [alice, bob]) {
      expect(await p.comment(id).count()).toBe(1);
      expect(await p.marker(id).count()).toBe(1);
      expect(await p.commentWithText(text).count()).toBe(1);
    }
    expect(alice.sse.filter(isNewComment(id))).toHaveLength(1);

    // alice created the album, so she hears of the comment, but it does not mention her.
    await waitFor(async () => (await alice.toastsShown()).some((t) => t.includes(text)), {
      timeoutMs: SLOW,
      what: "alice's notification of bob's comment",
    });
    expect((await alice.toastsShown()).filter((t) => t.includes(text))).toEqual([
      `@bob commented on your track: ${text}`,
    ]);
  },
);

scenario(
  '2-edit-delete: edits and deletes reach alice; delete buttons follow the roles',
  async () => {
    const e = theEnv();
    const original = `first take ${RUN}`;
    const id = await idOf(alice.commentWithText(original));

    // Who may do what to bob's comment.
    expect(await textOf(alice.byTestId('me-roles'))).toBe('album creator');
    const onAlice = alice.comment(id);
    expect(await onAlice.locator('[data-testid="comment-delete"]').count()).toBe(1); // album creator
    expect(await onAlice.locator('[data-testid="comment-edit"]').count()).toBe(0); // not the author
    const onBob = bob.comment(id);
    expect(await onBob.locator('[data-testid="comment-edit"]').count()).toBe(1);
    expect(await onBob.locator('[data-testid="comment-delete"]').count()).toBe(1);

    third = await e.openPage({
      name: 'dave-then-carol',
      user: 'dave',
      via: e.nginxB,
      trackId: TRACK.id,
    });
    const onDave = third.comment(id);
    await onDave.waitFor({ timeout: SLOW });
    expect(await textOf(third.byTestId('me-roles'))).toBe('');
    expect(await onDave.locator('[data-testid="comment-reply"]').count()).toBe(1);
    expect(await onDave.locator('[data-testid="comment-delete"]').count()).toBe(0);
    expect(await onDave.locator('[data-testid="comment-edit"]').count()).toBe(0);
    await third.signIn('carol');
    expect(await textOf(third.byTestId('me-roles'))).toBe('team');
    const onCarol = third.comment(id);
    await onCarol.waitFor({ timeout: SLOW });
    expect(await onCarol.locator('[data-testid="comment-delete"]').count()).toBe(1); // team
    expect(await onCarol.locator('[data-testid="comment-edit"]').count()).toBe(0);

    // bob edits.
    const edited = `second take ${RUN}`;
    await onBob.locator('[data-testid="comment-edit"]').click();
    await bob.byTestId('comment-edit-input').fill(edited);
    const t0 = Date.now();
    await bob.byTestId('comment-edit-save').click();
    await onAlice
      .locator('[data-testid="comment-content"]', { hasText: edited })
      .waitFor({ timeout: SLOW });
    timings.editFromClick = Date.now() - t0;
    expect(await textOf(onAlice.locator('[data-testid="comment-content"]'))).toBe(edited);
    expect(await textOf(onAlice.locator('[data-testid="comment-edited"]'))).toBe('(edited)');
    expect(await alice.commentWithText(original).count()).toBe(0);
    expect(await alice.marker(id).getAttribute('title')).toBe(`0:15 bob: ${edited}`);
    await onCarol
      .locator('[data-testid="comment-content"]', { hasText: edited })
      .waitFor({ timeout: SLOW });
    await onBob.locator('[data-testid="comment-edited"]').waitFor({ timeout: SLOW });

    // bob deletes: gone from alice's list and timeline, and from carol's.
    const t1 = Date.now();
    await onBob.locator('[data-testid="comment-delete"]').click();
    await expectCount(alice.comment(id), 0, "bob's deleted comment on alice's page");
    timings.deleteFromClick = Date.now() - t1;
    await expectCount(alice.marker(id), 0, "the deleted comment's marker on alice's page");
    await expectCount(third.comment(id), 0, "bob's deleted comment on carol's page");
    await expectCount(bob.comment(id), 0, "bob's deleted comment on his own page");

    // alice, as the album's creator, deletes another of bob's comments; bob's page drops it.
    const other = `for the creator to remove ${RUN}`;
    const otherId = await apiComment(e.nginxB.url, 'bob', other, 42);
    await alice.comment(otherId).waitFor({ timeout: SLOW });
    await bob.comment(otherId).waitFor({ timeout: SLOW });
    await alice.comment(otherId).locator('[data-testid="comment-delete"]').click();
    await expectCount(bob.comment(otherId), 0, "the comment alice deleted, on bob's page");
    await expectCount(alice.comment(otherId), 0, 'the comment alice deleted, on her page');
    const listed = await e.api(e.nginxB.url, 'GET', `/api/tracks/${TRACK.id}/comments`, {
      user: 'dave',
    });
    const ids = (listed.json as { comments: { id: number }[] }).comments.map((c) => c.id);
    expect(ids).not.toContain(id);
    expect(ids).not.toContain(otherId);
  },
);

scenario(
  '3-typing: bob typing shows on alice’s page and clears on submit and on expiry',
  async () => {
    const indicator = alice.byTestId('typing-indicator');
    expect(await indicator.isHidden()).toBe(true);

    const text = `typed live ${RUN}`;
    await bob.byTestId('comment-input').pressSequentially(text, { delay: 20 });
    await alice.page
      .locator('[data-testid="typing-indicator"]:not([hidden])', { hasText: 'bob is typing…' })
      .waitFor({ timeout: SLOW });
    expect(await textOf(indicator)).toBe('bob is typing…');
    await snapshot(alice, '3-typing-shown');
    // Nobody is told about their own typing.
    expect(await bob.byTestId('typing-indicator').isHidden()).toBe(true);

    await bob.byTestId('comment-input').press('Enter');
    await alice.commentWithText(text).waitFor({ timeout: SLOW });
    await indicator.waitFor({ state: 'hidden', timeout: SLOW });
    expect(await textOf(indicator)).toBe('');

    // Expiry: a typing signal that is never followed by "stopped" disappears by itself.
    const since = alice.sse.length;
    const res = await theEnv().api(theEnv().nginxB.url, 'POST', `/api/tracks/${TRACK.id}/typing`, {
      user: 'bob',
      body: { is_typing: true },
    });
    expect(res.status).toBe(202);
    const signal = await alice.waitForSse(
      (m) =>
        m.event === 'user_typing' && m.data?.is_typing === true && alice.sse.indexOf(m) >= since,
      SLOW,
    );
    const expiresInMs = Number(signal.data?.expires_in_ms);
    expect(expiresInMs).toBeGreaterThan(0);
    await alice.page
      .locator('[data-testid="typing-indicator"]:not([hidden])', { hasText: 'bob is typing…' })
      .waitFor({ timeout: SLOW });
    const shownAt = Date.now();
    await indicator.waitFor({ state: 'hidden', timeout: expiresInMs + SLOW });
    timings.typingShownForMs = Date.now() - shownAt;
    timings.typingExpiresInMs = expiresInMs;
    // It went away because it expired, not earlier (the page's timer starts when the event
    // arrives; the margin covers the delay of the page's report to this process).
    expect(Date.now() - signal.at).toBeGreaterThanOrEqual(expiresInMs - 1500);
    expect(
      alice.sse.some(
        (m) => m.event === 'user_typing' && m.data?.is_typing === false && m.at > signal.at,
      ),
    ).toBe(false);
  },
);

scenario('4-mention: "@alice look" from bob pops a toast on alice’s page', async () => {
  const text = `@alice look ${RUN}`;
  await bob.byTestId('comment-input').fill(text);
  await bob.byTestId('comment-input').press('Enter');
  const toast = alice.page.locator('[data-testid="toast"]', { hasText: text });
  await toast.waitFor({ timeout: SLOW });
  expect(await textOf(toast)).toBe(`@bob mentioned you: ${text}`);
  // alice is named and is the album's creator: still one mention, one toast.
  await alice.waitForSse((m) => m.stream === 'me' && m.event === 'mention', SLOW);
  expect((await alice.toastsShown()).filter((t) => t.includes(text))).toHaveLength(1);
  expect((await bob.toastsShown()).filter((t) => t.includes(text))).toHaveLength(0);
  await alice.commentWithText(text).waitFor({ timeout: SLOW });

  await snapshot(alice, '4-mention-toast');

  // The toast jumps alice's player to the comment's position (bob is at 0:15).
  await toast.click();
  await waitFor(async () => (await textOf(alice.byTestId('position'))).startsWith('0:15 '), {
    timeoutMs: SLOW,
    what: 'alice at 0:15 after clicking the toast',
  });
});

scenario(
  '5-failover: replica A is SIGKILLed; alice’s page resumes on B without a reload or duplicates',
  async () => {
    const e = theEnv();
    await alice.page.evaluate(() => {
      (window as unknown as { __marker: number }).__marker = 1;
    });
    const statesBefore = (await alice.connectionStates()).length;
    const sseBefore = alice.sse.length;
    const aUpstream = `127.0.0.1:${e.a.port}`;

    await e.a.kill();
    const killedAt = Date.now();

    // The page notices (the badge may already be back to live by the time we look: use the log).
    await waitFor(
      async () =>
        (await alice.connectionStates()).slice(statesBefore).some((s) => s.text === 'reconnecting'),
      { timeoutMs: SLOW, intervalMs: 50, what: "alice's page to show reconnecting" },
    );
    timings.reconnectingShownAfterKill = Date.now() - killedAt;

    // Two comments through B while alice is (most likely) still between connections.
    const first = `after failover one ${RUN}`;
    const second = `after failover two ${RUN}`;
    const firstId = await apiComment(e.nginxB.url, 'bob', first, 20);
    const secondId = await apiComment(e.nginxB.url, 'bob', second, 25);

    for (const [id, text] of [
      [firstId, first],
      [secondId, second],
    ] as const) {
      await alice.comment(id).waitFor({ timeout: 60000 });
      await alice.waitForSse(isNewComment(id), 60000);
      expect(await alice.comment(id).count()).toBe(1);
      expect(await alice.commentWithText(text).count()).toBe(1);
      expect(await alice.marker(id).count()).toBe(1);
    }
    timings.bothCommentsOnAliceAfterKill = Date.now() - killedAt;

    await waitFor(
      async () => ['live', 'caught up'].includes(await textOf(alice.byTestId('connection-state'))),
      { timeoutMs: SLOW, intervalMs: 50, what: "alice's badge back to live / caught up" },
    );
    const after = (await alice.connectionStates()).slice(statesBefore).map((s) => s.text);
    expect(after).toContain('reconnecting');
    expect(after).not.toContain('reset and reloaded');

    // No reload: the same document, the marker still set.
    expect(
      await alice.page.evaluate(() => (window as unknown as { __marker?: number }).__marker),
    ).toBe(1);
    // The stream events arrived once each (the client and server together: no replay overlap).
    const fresh = alice.sse.slice(sseBefore);
    expect(fresh.filter(isNewComment(firstId))).toHaveLength(1);
    expect(fresh.filter(isNewComment(secondId))).toHaveLength(1);
    // alice hears of both comments as the album's creator: her personal stream resumed too.
    await waitFor(
      async () => {
        const shown = await alice.toastsShown();
        return shown.some((t) => t.includes(first)) && shown.some((t) => t.includes(second));
      },
      { timeoutMs: 60000, intervalMs: 100, what: 'notifications of both comments on alice' },
    );
    const shown = await alice.toastsShown();
    expect(shown.filter((t) => t.includes(first))).toEqual([
      `@bob commented on your track: ${first}`,
    ]);
    expect(shown.filter((t) => t.includes(second))).toEqual([
      `@bob commented on your track: ${second}`,
    ]);

    // alice really was on A: nginx logged her stream to A when A died.
    await waitFor(
      () =>
        e.nginxA
          .accessLog()
          .split('\n')
          .some((l) => l.includes('/events"') && l.includes(`"upstream":"${aUpstream}`)),
      { timeoutMs: SLOW, what: "nginx A's log of a stream that was on replica A" },
    );

    // alice's writes fail over too (nginx A retries the refused connect on backup B).
    const reply = `still here ${RUN}`;
    await alice.byTestId('comment-input').fill(reply);
    await alice.byTestId('comment-input').press('Enter');
    await bob.commentWithText(reply).waitFor({ timeout: SLOW });
    await expectCount(alice.commentWithText(reply), 1, "alice's own comment after failover");
  },
);

scenario('6-csp: no page logged a CSP violation or threw', async () => {
  const e = theEnv();
  // The page is served under a CSP without inline script, so a clean log means something.
  const home = await fetch(`${e.nginxB.url}/`, { signal: AbortSignal.timeout(SLOW) });
  await home.text();
  expect(home.status).toBe(200);
  const scriptSrc = /(?:^|;)\s*script-src ([^;]*)/.exec(
    home.headers.get('content-security-policy') ?? '',
  )?.[1];
  expect(scriptSrc).toBe("'self'");
  expect(e.pages.length).toBeGreaterThanOrEqual(3);
  for (const p of e.pages) {
    const csp = p.consoleErrors.filter((m) => /content security policy|CSP|Refused to/i.test(m));
    expect({ page: p.name, csp }).toEqual({ page: p.name, csp: [] });
    expect({ page: p.name, violations: await p.cspViolations() }).toEqual({
      page: p.name,
      violations: [],
    });
    expect({ page: p.name, pageErrors: p.pageErrors }).toEqual({ page: p.name, pageErrors: [] });
  }
});
