/**
 * Resuming streams across real replicas with `Last-Event-ID` (header or
 * `?last_event_id=`): exactly the missed events in order, then live ones,
 * whichever replica the client lands on; `reset` when history does not
 * cover the id (contract section 5).
 */
import { trackStream } from '../src/events/types';
import { LIVE_USERS, startLiveEnv, type LiveEnv, connected } from './support/live-env';
import { waitFor } from '../harness/wait';
import {
  numericIds,
  resumeFromId,
  resumeSse,
  type CommentJson,
  type SseClient,
} from './support/sse-client';

const RETENTION_MS = 1500;

let env: LiveEnv;

beforeAll(async () => {
  env = await startLiveEnv({ env: { EVENT_RETENTION_MS: String(RETENTION_MS) } });
});

afterAll(async () => {
  await env?.close();
});

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);
const trackUrl = (replica: LiveEnv['a'], track: string) =>
  `${replica.url}/api/tracks/${encodeURIComponent(track)}/events`;

/** Stored events of `s` must be exactly ids from..to, in order. */
async function expectIds(s: SseClient, from: number, to: number): Promise<void> {
  await s.waitForEvents((e) => e.id === String(to), 1);
  expect(numericIds(s.storedEvents())).toEqual(range(from, to));
}

describe('resume across replicas', () => {
  test.each(['header', 'query'] as const)(
    'a track stream resumed on the other replica (Last-Event-ID in the %s) gets exactly the missed events, then live ones',
    async (via) => {
      const track = await env.newTrack();
      const first = await env.trackStream(env.a, 'bob', track);
      await connected(first);
      const seen: CommentJson[] = [];
      for (let i = 0; i < 3; i++) {
        seen.push(await env.postComment(i % 2 ? env.b : env.a, 'alice', track, `seen ${i}`, i));
      }
      await expectIds(first, 1, 3);
      expect(first.lastEventId).toBe('3');
      first.close();

      // While away: two comments, an edit and a delete (ids 4..7), on both replicas.
      const missed1 = await env.postComment(env.a, 'alice', track, 'missed 1', 10);
      const missed2 = await env.postComment(env.b, 'carol', track, 'missed 2', 11);
      const edit = await env.api(env.b, 'PATCH', `/api/comments/${seen[0]!.id}`, {
        user: 'alice',
        body: { content: 'seen 0, edited while away' },
      });
      expect(edit.status).toBe(200);
      const del = await env.api(env.a, 'DELETE', `/api/comments/${seen[1]!.id}`, {
        user: 'alice',
      });
      expect(del.status).toBe(204);

      const resumed = env.track(
        await resumeSse(first, trackUrl(env.b, track), { token: env.tokens.bob, via }),
      );
      expect(resumed.status).toBe(200);
      await expectIds(resumed, 4, 7);
      const replayed = resumed.storedEvents();
      expect(replayed.map((e) => e.event)).toEqual([
        'new_comment',
        'new_comment',
        'comment_edited',
        'comment_deleted',
      ]);
      expect(replayed[0]!.data).toEqual({ type: 'new_comment', track_id: track, comment: missed1 });
      expect(replayed[1]!.data).toEqual({ type: 'new_comment', track_id: track, comment: missed2 });
      expect(replayed[2]!.data).toMatchObject({
        type: 'comment_edited',
        track_id: track,
        comment_id: seen[0]!.id,
        content: 'seen 0, edited while away',
        is_edited: true,
      });
      expect(replayed[3]!.data).toEqual({
        type: 'comment_deleted',
        track_id: track,
        comment_id: seen[1]!.id,
      });
      // connected comes first, and no reset.
      expect(resumed.events()[0]!.event).toBe('connected');
      expect(resumed.events('reset')).toEqual([]);

      // Then live events, on from where the replay ended.
      const live = await env.postComment(env.a, 'dave', track, 'live after resume');
      const liveEvent = await resumed.waitForEvent((e) => e.data.comment?.id === live.id);
      expect(liveEvent.id).toBe('8');
      expect(numericIds(resumed.storedEvents())).toEqual(range(4, 8));
      resumed.close();
    },
  );

  test('a personal stream resumes on the other replica with exactly the missed mentions', async () => {
    const track = await env.newTrack();
    const first = await env.personalStream(env.a, 'carol');
    await connected(first);
    const c1 = await env.postComment(env.b, 'alice', track, 'hi @carol');
    const m1 = await first.waitForEvent((e) => e.event === 'mention');
    expect(m1.data.comment!.id).toBe(c1.id);
    first.close();

    const missed = [
      await env.postComment(env.a, 'bob', track, '@carol one'),
      await env.postComment(env.b, 'dave', track, '@carol two'),
    ];
    // Not a mention of carol: must not appear.
    await env.postComment(env.a, 'bob', track, 'nobody named');

    const resumed = env.track(
      await resumeSse(first, `${env.b.url}/api/me/events`, { token: env.tokens.carol }),
    );
    const base = Number(m1.id);
    await resumed.waitForEvents((e) => e.event === 'mention', 2);
    const live = await env.postComment(env.a, 'erin', track, 'and live @carol');
    await resumed.waitForEvents((e) => e.event === 'mention', 3);
    const mentions = resumed.events('mention');
    expect(mentions.map((e) => e.data.comment!.id)).toEqual([...missed.map((c) => c.id), live.id]);
    expect(numericIds(mentions)).toEqual([base + 1, base + 2, base + 3]);
    expect(mentions[0]!.data.from_user).toEqual({ id: LIVE_USERS.bob.id, username: 'bob' });
    expect(mentions.every((e) => e.data.type === 'mention' && e.data.track_id === track)).toBe(
      true,
    );
    resumed.close();
  });

  test('resuming from the newest id replays nothing; from 0 replays everything', async () => {
    const track = await env.newTrack();
    const posted: CommentJson[] = [];
    for (let i = 0; i < 3; i++) posted.push(await env.postComment(env.a, 'alice', track, `c${i}`));

    const upToDate = env.track(
      await resumeFromId(trackUrl(env.b, track), '3', { token: env.tokens.bob }),
    );
    const fromZero = env.track(
      await resumeFromId(trackUrl(env.a, track), '0', { token: env.tokens.carol, via: 'query' }),
    );
    await expectIds(fromZero, 1, 3);
    expect(fromZero.events('new_comment').map((e) => e.data.comment!.id)).toEqual(
      posted.map((c) => c.id),
    );
    await connected(upToDate);

    const live = await env.postComment(env.b, 'alice', track, 'live');
    for (const s of [upToDate, fromZero]) {
      await s.waitForEvent((e) => e.data.comment?.id === live.id);
      expect(s.events('reset')).toEqual([]);
    }
    expect(numericIds(upToDate.storedEvents())).toEqual([4]);
    expect(numericIds(fromZero.storedEvents())).toEqual([1, 2, 3, 4]);
    upToDate.close();
    fromZero.close();
  });

  test('a client that resumes while comments keep coming gets every id once (replay→live handover)', async () => {
    const track = await env.newTrack();
    const first = await env.trackStream(env.a, 'bob', track);
    await connected(first);
    for (let i = 0; i < 5; i++) await env.postComment(env.a, 'alice', track, `before ${i}`);
    await expectIds(first, 1, 5);
    first.close();

    const TOTAL = 30;
    let posted = 5;
    // Keep posting on both replicas while the client reconnects in the middle.
    const writer = (async () => {
      while (posted < TOTAL) {
        await env.postComment(posted % 2 ? env.a : env.b, 'alice', track, `during ${posted}`);
        posted++;
      }
    })();
    await waitFor(() => posted >= 12, { what: 'some comments to be posted meanwhile' });
    const resumed = env.track(
      await resumeSse(first, trackUrl(env.b, track), { token: env.tokens.bob }),
    );
    await writer;
    await expectIds(resumed, 6, TOTAL);
    resumed.close();
  });
});

describe('reset', () => {
  test('an id older than the retained history gets reset first, then live events', async () => {
    const track = await env.newTrack();
    const stream = trackStream(track);
    for (let i = 0; i < 3; i++) await env.postComment(env.a, 'alice', track, `old ${i}`);

    // Run the relay's own prune (EVENT_RETENTION_MS) here rather than on its timer
    // (EVENT_PRUNE_INTERVAL_MS), so the other resume tests in this file keep their history.
    const log = env.eventLog();
    await waitFor(
      async () => {
        await log.pruneBefore(new Date(Date.now() - RETENTION_MS));
        const head = (await log.heads([stream])).get(stream);
        return head !== undefined && head.retainedFrom === 4;
      },
      { timeoutMs: 10000, intervalMs: 200, what: 'events 1..3 to pass retention' },
    );
    await env.postComment(env.b, 'alice', track, 'retained 4');
    await env.postComment(env.b, 'alice', track, 'retained 5');

    const expired = env.track(
      await resumeFromId(trackUrl(env.b, track), '2', { token: env.tokens.bob }),
    );
    const reset = await expired.waitForEvent((e) => e.event === 'reset');
    expect(reset.id).toBeUndefined();
    expect(reset.data).toEqual({ type: 'reset', track_id: track, reason: expect.any(String) });
    const order = expired.events().map((e) => e.event);
    expect(order.slice(0, 2)).toEqual(['connected', 'reset']);

    // At the edge of history nothing is missing: 3 resumes normally.
    const edge = env.track(
      await resumeFromId(trackUrl(env.a, track), '3', { token: env.tokens.carol, via: 'query' }),
    );
    await expectIds(edge, 4, 5);
    expect(edge.events('reset')).toEqual([]);

    // Both then receive live events.
    const live = await env.postComment(env.a, 'dave', track, 'live after reset');
    for (const s of [expired, edge]) {
      const e = await s.waitForEvent((e) => e.data.comment?.id === live.id);
      expect(e.id).toBe('6');
    }
    const ids = numericIds(expired.storedEvents());
    for (let i = 1; i < ids.length; i++) expect(ids[i]!).toBeGreaterThan(ids[i - 1]!);
    expired.close();
    edge.close();
  });

  test.each([
    ['a nonsense id', 'abc', 'header'],
    ['a nonsense id', 'abc', 'query'],
    ['an id from the future', '999999', 'header'],
    ['a negative id', '-1', 'header'],
  ] as const)('%s (%s, in the %s) gets reset, then live events', async (_what, id, via) => {
    const track = await env.newTrack();
    await env.postComment(env.a, 'alice', track, 'existing');
    const s = env.track(
      await resumeFromId(trackUrl(env.b, track), id, { token: env.tokens.bob, via }),
    );
    expect(s.status).toBe(200);
    const reset = await s.waitForEvent((e) => e.event === 'reset');
    expect(reset.id).toBeUndefined();
    expect(reset.data).toEqual({ type: 'reset', track_id: track, reason: expect.any(String) });
    expect(s.events().map((e) => e.event)).toEqual(['connected', 'reset']);

    const live = await env.postComment(env.a, 'alice', track, 'live');
    const e = await s.waitForEvent((e) => e.data.comment?.id === live.id);
    expect(e.id).toBe('2');
    // The reset did not replay history.
    expect(numericIds(s.storedEvents())).toEqual([2]);
    s.close();
  });

  test('a personal stream resumed from an id it never had gets reset', async () => {
    const s = env.track(
      await resumeFromId(`${env.a.url}/api/me/events`, '424242', { token: env.tokens.frank }),
    );
    const reset = await s.waitForEvent((e) => e.event === 'reset');
    expect(reset.data.type).toBe('reset');
    expect('track_id' in reset.data).toBe(true);
    const track = await env.newTrack();
    const c = await env.postComment(env.b, 'alice', track, 'hey @frank');
    const m = await s.waitForEvent((e) => e.event === 'mention');
    expect(m.data.comment!.id).toBe(c.id);
    expect(m.id).toBe('1');
    s.close();
  });
});
