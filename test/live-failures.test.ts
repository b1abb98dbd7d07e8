/**
 * Failures on the live path with real processes: a replica SIGKILLed with
 * clients attached, a replica that dies after committing but before
 * publishing, Redis stopped and restarted, and the `eventsource` package
 * reconnecting on its own (contract section 5 guarantees).
 */
import { EventSource } from 'eventsource';
import { trackStream } from '../src/events/types';
import {
  LIVE_USERS,
  metricValue,
  startLiveEnv,
  startTcpProxy,
  type LiveEnv,
  connected,
  twoSubscribersPerReplica,
} from './support/live-env';
import { waitFor } from '../harness/wait';
import type { Replica } from '../harness/replica';
import { numericIds, resumeSse, type CommentJson } from './support/sse-client';

let env: LiveEnv;
let redisDown = false;

beforeAll(async () => {
  env = await startLiveEnv({ env: { SSE_RETRY_MS: '200', HEARTBEAT_MS: '1000' } });
});

afterAll(async () => {
  await env?.close();
});

// A test that failed halfway must not leave the next one without Redis or a replica.
beforeEach(async () => {
  if (redisDown) {
    await env.redis.start();
    redisDown = false;
  }
  if (env.a.exited) await env.restartReplica(env.a);
  if (env.b.exited) await env.restartReplica(env.b);
  await Promise.all([ready(env.a), ready(env.b)]);
});

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function readyz(replica: Replica): Promise<number> {
  return (await env.api(replica, 'GET', '/readyz')).status;
}
const ready = (replica: Replica) =>
  waitFor(async () => (await readyz(replica)) === 200, {
    timeoutMs: 15000,
    what: `:${replica.port} to be ready`,
  });

async function stopRedis(): Promise<void> {
  redisDown = true;
  await env.redis.stop();
  // Awaited, not assumed: each live replica has noticed that its bus is gone.
  await Promise.all(
    env.replicas
      .filter((r) => !r.exited)
      .map((r) =>
        waitFor(async () => (await readyz(r)) === 503, {
          what: `:${r.port} to notice Redis is down`,
        }),
      ),
  );
}

async function startRedis(): Promise<void> {
  await env.redis.start();
  redisDown = false;
}

/** Rows of `stream` not yet marked published. */
async function unpublished(stream: string): Promise<number[]> {
  const rows = await env.sql<{ seq: string }>(
    'SELECT seq FROM stream_events WHERE stream = $1 AND published_at IS NULL ORDER BY seq',
    [stream],
  );
  return rows.map((r) => Number(r.seq));
}

/** Waits until every event of `stream` in the log is marked published. */
function allMarkedPublished(stream: string, what: string, timeoutMs?: number): Promise<void> {
  return waitFor(async () => (await unpublished(stream)).length === 0, { what, timeoutMs });
}

describe('a replica killed with clients attached', () => {
  test('its clients reconnect to the other replica with Last-Event-ID and miss nothing', async () => {
    const track = await env.newTrack();
    const onA = await env.trackStream(env.a, 'bob', track);
    const mineOnA = await env.personalStream(env.a, 'carol');
    const onB = await env.trackStream(env.b, 'dave', track);
    await Promise.all([onA, mineOnA, onB].map(connected));

    await env.postComment(env.a, 'alice', track, 'before 1 @carol');
    await env.postComment(env.b, 'alice', track, 'before 2');
    await onA.waitForEvents((e) => e.event === 'new_comment', 2);
    await mineOnA.waitForEvent((e) => e.event === 'mention');
    const mentionsBefore = mineOnA.events('mention').length;

    await env.a.kill();
    await Promise.all([onA.waitForClose(), mineOnA.waitForClose()]);

    const whileDead: CommentJson[] = [];
    for (let i = 0; i < 3; i++) {
      whileDead.push(await env.postComment(env.b, 'alice', track, `while A is dead ${i} @carol`));
    }

    const resumed = env.track(
      await resumeSse(onA, `${env.b.url}/api/tracks/${track}/events`, {
        token: env.tokens.bob,
      }),
    );
    const mineResumed = env.track(
      await resumeSse(mineOnA, `${env.b.url}/api/me/events`, { token: env.tokens.carol }),
    );
    await resumed.waitForEvents((e) => e.event === 'new_comment', 3);
    await mineResumed.waitForEvents((e) => e.event === 'mention', 3);

    const live = await env.postComment(env.b, 'alice', track, 'live again @carol');
    await resumed.waitForEvent((e) => e.data.comment?.id === live.id);
    await mineResumed.waitForEvent((e) => e.data.comment?.id === live.id);

    const expected = [...whileDead, live].map((c) => c.id);
    expect(resumed.events('new_comment').map((e) => e.data.comment!.id)).toEqual(expected);
    expect(numericIds(resumed.storedEvents())).toEqual(range(3, 6));
    expect(resumed.events('reset')).toEqual([]);
    expect(mineResumed.events('mention').map((e) => e.data.comment!.id)).toEqual(expected);
    const base = Number(mineOnA.lastEventId);
    expect(base).toBe(mentionsBefore);
    expect(numericIds(mineResumed.storedEvents())).toEqual(range(base + 1, base + 4));

    // The subscriber that stayed on B saw everything once.
    await onB.waitForEvent((e) => e.data.comment?.id === live.id);
    expect(numericIds(onB.storedEvents())).toEqual(range(1, 6));
    for (const s of [resumed, mineResumed, onB]) s.close();
  });
});

describe('commit, then die before publishing', () => {
  test('an event committed on a replica that could not publish it is delivered by the survivors, once', async () => {
    const track = await env.newTrack();
    const stream = trackStream(track);
    const onB = await env.trackStream(env.b, 'bob', track);
    const creatorOnB = await env.personalStream(env.b, 'creator');
    await Promise.all([connected(onB), connected(creatorOnB)]);
    const first = await env.postComment(env.a, 'alice', track, 'published normally');
    await onB.waitForEvent((e) => e.data.comment?.id === first.id);
    // Its committer marks it published (batched) while the bus is still up.
    await allMarkedPublished(stream, 'the first event marked published');
    const relayedBefore = metricValue(
      await env.metrics(env.b),
      'trackcomments_events_published_total',
      { source: 'relay' },
    );

    await stopRedis();
    const orphan = await env.postComment(env.a, 'alice', track, 'committed, never published');
    // Committed but not published: the row is there and unmarked.
    expect(await unpublished(stream)).toEqual([2]);
    await env.a.kill();
    await startRedis();

    const got = await onB.waitForEvent((e) => e.data.comment?.id === orphan.id, 20000);
    expect(got.id).toBe('2');
    expect(got.data).toEqual({ type: 'new_comment', track_id: track, comment: orphan });
    const mention = await creatorOnB.waitForEvent(
      (e) => e.event === 'mention' && e.data.comment?.id === orphan.id,
      20000,
    );
    expect(mention.data.from_user).toEqual({ id: LIVE_USERS.alice.id, username: 'alice' });

    // Only B is alive, so B's relay is what published it: the row ends up marked.
    await allMarkedPublished(stream, 'the relay to mark the orphaned event published', 15000);
    const relayedAfter = metricValue(
      await env.metrics(env.b),
      'trackcomments_events_published_total',
      { source: 'relay' },
    );
    expect(relayedAfter).toBeGreaterThan(relayedBefore);

    // A later event flushes anything still in flight; then count: exactly once each.
    const later = await env.postComment(env.b, 'alice', track, 'later');
    await onB.waitForEvent((e) => e.data.comment?.id === later.id);
    await creatorOnB.waitForEvent((e) => e.data.comment?.id === later.id);
    expect(numericIds(onB.storedEvents())).toEqual([1, 2, 3]);
    expect(creatorOnB.events('mention').map((e) => e.data.comment!.id)).toEqual([
      first.id,
      orphan.id,
      later.id,
    ]);
    onB.close();
    creatorOnB.close();
  });
  test('when only the committing replica lost the bus and then died, the others’ relay delivers the event', async () => {
    // A third replica reaches Redis through a proxy the test can cut: it alone loses the bus,
    // so nothing but an outbox relay (on A or B, whose bus stays up) can deliver its event.
    const proxy = await startTcpProxy(env.redis.port);
    let c: Replica | undefined;
    try {
      c = await env.startReplica(undefined, { REDIS_URL: `redis://127.0.0.1:${proxy.port}` });
      const track = await env.newTrack();
      const stream = trackStream(track);
      const onB = await env.trackStream(env.b, 'bob', track);
      const onA = await env.trackStream(env.a, 'carol', track);
      await Promise.all([connected(onB), connected(onA)]);
      const first = await env.postComment(c, 'alice', track, 'published by C');
      await onB.waitForEvent((e) => e.data.comment?.id === first.id);

      proxy.cut();
      await waitFor(async () => (await readyz(c!)) === 503, {
        what: 'C to notice its bus is gone',
      });
      const orphan = await env.postComment(c, 'alice', track, 'committed on C, never published');
      // C marks what it published in small batches: wait for seq 1's mark, then only 2 is left.
      await waitFor(async () => JSON.stringify(await unpublished(stream)) === '[2]', {
        what: 'only seq 2 left unpublished',
      });
      expect(await unpublished(stream)).toEqual([2]);
      await c.kill();
      expect(await readyz(env.b)).toBe(200);

      // No later event on the track, no bus outage on A/B: only the relay can bring it.
      for (const s of [onB, onA]) {
        const got = await s.waitForEvent((e) => e.data.comment?.id === orphan.id, 20000);
        expect(got.id).toBe('2');
        expect(got.data).toEqual({ type: 'new_comment', track_id: track, comment: orphan });
      }
      await allMarkedPublished(stream, 'the relayed event to be marked published');
      const later = await env.postComment(env.a, 'alice', track, 'later');
      for (const s of [onB, onA]) {
        await s.waitForEvent((e) => e.data.comment?.id === later.id);
        expect(numericIds(s.storedEvents())).toEqual([1, 2, 3]);
        s.close();
      }
    } finally {
      await c?.kill();
      await proxy.close();
    }
  });
});

describe('Redis stopped and restarted', () => {
  test('comments committed on both replicas while Redis is down reach every subscriber once, in order', async () => {
    const track = await env.newTrack();
    const subs = await twoSubscribersPerReplica(env, track);
    const creatorOnA = await env.personalStream(env.a, 'creator');
    await Promise.all([...subs, creatorOnA].map(connected));
    const posted: CommentJson[] = [];
    posted.push(await env.postComment(env.a, 'alice', track, 'before the outage'));
    for (const s of subs) await s.waitForEvent((e) => e.id === '1');
    await allMarkedPublished(trackStream(track), 'the first event marked published');

    await stopRedis();
    for (let i = 0; i < 4; i++) {
      posted.push(await env.postComment(i % 2 ? env.a : env.b, 'alice', track, `outage ${i}`));
    }
    const edit = await env.api(env.b, 'PATCH', `/api/comments/${posted[1]!.id}`, {
      user: 'alice',
      body: { content: 'edited during the outage' },
    });
    expect(edit.status).toBe(200);
    // Nothing could be published.
    expect(await unpublished(trackStream(track))).toEqual([2, 3, 4, 5, 6]);

    await startRedis();
    await Promise.all([ready(env.a), ready(env.b)]);
    for (const s of subs) await s.waitForEvents((e) => e.id === '6', 1, 20000);

    // Wait out the relay's republication of the backlog (duplicates on the bus), then a live one.
    await allMarkedPublished(trackStream(track), 'the backlog to be marked published', 15000);
    const live = await env.postComment(env.b, 'alice', track, 'after the outage');
    posted.push(live);
    for (const s of subs) {
      await s.waitForEvent((e) => e.data.comment?.id === live.id);
      expect(numericIds(s.storedEvents())).toEqual(range(1, 7));
      expect(s.storedEvents().map((e) => e.event)).toEqual([
        'new_comment',
        'new_comment',
        'new_comment',
        'new_comment',
        'new_comment',
        'comment_edited',
        'new_comment',
      ]);
      expect(s.events('new_comment').map((e) => e.data.comment!.id)).toEqual(
        posted.map((c) => c.id),
      );
      expect(s.ended).toBe(false);
    }
    await creatorOnA.waitForEvent((e) => e.data.comment?.id === live.id);
    expect(creatorOnA.events('mention').map((e) => e.data.comment!.id)).toEqual(
      posted.map((c) => c.id),
    );
    for (const s of [...subs, creatorOnA]) s.close();
  });

  test('while Redis is down, typing is refused with 503 and comments still commit', async () => {
    const track = await env.newTrack();
    await stopRedis();
    const typing = await env.api(env.a, 'POST', `/api/tracks/${track}/typing`, {
      user: 'alice',
      body: { is_typing: true },
    });
    expect(typing.status).toBe(503);
    expect(typing.json).toEqual({
      error: { code: expect.any(String), message: expect.any(String) },
    });
    await env.postComment(env.b, 'alice', track, 'still accepted');
    await startRedis();
  });
});

describe('the eventsource package across replica restarts', () => {
  test('reconnects on its own with Last-Event-ID and receives what was posted while its replica was down, once', async () => {
    const track = await env.newTrack();
    const requests: { lastEventId: string | null }[] = [];
    const received: { id: string; commentId: number }[] = [];
    const errors: string[] = [];
    const token = env.tokens.bob;
    const es = new EventSource(`${env.a.url}/api/tracks/${track}/events`, {
      fetch: (input, init) => {
        const headers = new Headers(init?.headers);
        requests.push({ lastEventId: headers.get('last-event-id') });
        headers.set('Authorization', `Bearer ${token}`);
        return fetch(input, { ...init, headers });
      },
    });
    es.addEventListener('new_comment', (e) => {
      const data = JSON.parse(e.data) as { comment: CommentJson };
      received.push({ id: e.lastEventId, commentId: data.comment.id });
    });
    es.addEventListener('error', (e) => errors.push(String((e as { message?: string }).message)));
    let opened = 0;
    es.addEventListener('open', () => opened++);
    try {
      await waitFor(() => opened === 1, { what: 'the EventSource to open' });
      const c1 = await env.postComment(env.a, 'alice', track, 'one');
      await waitFor(() => received.length === 1, { what: 'the first comment' });

      // SIGKILL: the connection drops; comments go to the survivor meanwhile.
      await env.a.kill();
      const c2 = await env.postComment(env.b, 'alice', track, 'two');
      const c3 = await env.postComment(env.b, 'alice', track, 'three');
      await env.restartReplica(env.a);
      await waitFor(() => received.length >= 3, {
        timeoutMs: 20000,
        what: 'the EventSource to reconnect and catch up',
      });
      const c4 = await env.postComment(env.a, 'alice', track, 'four');
      await waitFor(() => received.length >= 4, { what: 'a live comment after the reconnect' });
      expect(opened).toBeGreaterThanOrEqual(2);
      expect(requests[0]!.lastEventId).toBeNull();
      // Every reconnect after the first event carried the id of the last one seen.
      expect(requests.slice(1).map((r) => r.lastEventId)).toEqual(requests.slice(1).map(() => '1'));

      // SIGTERM: the replica drains its streams (retry hint) and exits.
      await env.a.stop('SIGTERM');
      const c5 = await env.postComment(env.b, 'alice', track, 'five');
      await env.restartReplica(env.a);
      await waitFor(() => received.length >= 5, {
        timeoutMs: 20000,
        what: 'the EventSource to come back after a graceful stop',
      });
      const c6 = await env.postComment(env.b, 'alice', track, 'six');
      await waitFor(() => received.length >= 6, { what: 'the last live comment' });

      expect(received).toEqual(
        [c1, c2, c3, c4, c5, c6].map((c, i) => ({ id: String(i + 1), commentId: c.id })),
      );
      expect(requests.some((r) => r.lastEventId === '4')).toBe(true);
      expect(errors.length).toBeGreaterThan(0);
    } finally {
      es.close();
    }
  });
});
