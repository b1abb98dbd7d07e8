/**
 * Live updates across two real replicas (PostgreSQL + a private Redis):
 * cross-replica delivery, per-track routing, the stream format, mentions on
 * personal streams and the heartbeat (contract section 5).
 */
import http from 'node:http';
import {
  LIVE_USERS,
  startLiveEnv,
  type LiveEnv,
  type LiveUser,
  connected,
  twoSubscribersPerReplica,
} from './support/live-env';
import { numericIds, type CommentJson, type SseClient } from './support/sse-client';

let env: LiveEnv;

beforeAll(async () => {
  env = await startLiveEnv({ env: { HEARTBEAT_MS: '200', SSE_RETRY_MS: '1500' } });
});

afterAll(async () => {
  await env?.close();
});

const isComment =
  (type: string, id: number) =>
  (e: { event: string; data: { comment?: CommentJson; comment_id?: number } }) =>
    e.event === type && (e.data.comment?.id === id || e.data.comment_id === id);

describe('cross-replica delivery', () => {
  test('a comment posted, edited and deleted reaches subscribers on both replicas exactly once each', async () => {
    const track = await env.newTrack();
    const onA = await env.trackStream(env.a, 'bob', track);
    const onB = await env.trackStream(env.b, 'carol', track);
    await Promise.all([connected(onA), connected(onB)]);

    const comment = await env.postComment(env.a, 'alice', track, 'hello from replica A', 12.5);
    for (const s of [onA, onB]) {
      const e = await s.waitForEvent(isComment('new_comment', comment.id));
      expect(e.data).toEqual({ type: 'new_comment', track_id: track, comment });
    }

    const edit = await env.api(env.b, 'PATCH', `/api/comments/${comment.id}`, {
      user: 'alice',
      body: { content: 'edited on replica B' },
    });
    expect(edit.status).toBe(200);
    const edited = (edit.json as { comment: CommentJson }).comment;
    expect(edited.last_edited_at).toEqual(expect.any(String));
    for (const s of [onA, onB]) {
      const e = await s.waitForEvent(isComment('comment_edited', comment.id));
      expect(e.data).toEqual({
        type: 'comment_edited',
        track_id: track,
        comment_id: comment.id,
        content: 'edited on replica B',
        timestamp: 12.5,
        is_edited: true,
        last_edited_at: edited.last_edited_at,
      });
      expect(new Date(e.data.last_edited_at!).toISOString()).toBe(e.data.last_edited_at);
    }

    // The album's creator deletes it, on the replica that did not edit it.
    const del = await env.api(env.a, 'DELETE', `/api/comments/${comment.id}`, { user: 'creator' });
    expect(del.status).toBe(204);
    for (const s of [onA, onB]) {
      const e = await s.waitForEvent(isComment('comment_deleted', comment.id));
      expect(e.data).toEqual({ type: 'comment_deleted', track_id: track, comment_id: comment.id });
    }

    // Exactly once each, in commit order, with the ids of a fresh stream.
    for (const s of [onA, onB]) {
      expect(s.storedEvents().map((e) => [e.event, e.id])).toEqual([
        ['new_comment', '1'],
        ['comment_edited', '2'],
        ['comment_deleted', '3'],
      ]);
    }
    onA.close();
    onB.close();
  });

  test('several subscribers on each replica all receive a burst of comments once, in order', async () => {
    const track = await env.newTrack();
    const subs = await twoSubscribersPerReplica(env, track);
    await Promise.all(subs.map(connected));
    const posted: CommentJson[] = [];
    // Alternate replicas: events committed on either must come out in one order.
    for (let i = 0; i < 10; i++) {
      posted.push(await env.postComment(i % 2 ? env.b : env.a, 'alice', track, `burst ${i}`, i));
    }
    for (const s of subs) {
      const got = await s.waitForEvents((e) => e.event === 'new_comment', posted.length);
      expect(got.map((e) => e.data.comment!.id)).toEqual(posted.map((c) => c.id));
      expect(numericIds(s.storedEvents())).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      s.close();
    }
  });
});

describe('routing', () => {
  test('a subscriber of one track receives none of another track’s events', async () => {
    const track1 = await env.newTrack();
    const track2 = await env.newTrack();
    const sub1 = await env.trackStream(env.a, 'bob', track1);
    const sub2 = await env.trackStream(env.b, 'carol', track2);
    const sub2onA = await env.trackStream(env.a, 'dave', track2);
    await Promise.all([connected(sub1), connected(sub2), connected(sub2onA)]);

    const c1 = await env.postComment(env.a, 'alice', track1, 'only for track 1');
    await sub1.waitForEvent(isComment('new_comment', c1.id));
    const typing = await env.api(env.b, 'POST', `/api/tracks/${track1}/typing`, {
      user: 'alice',
      body: { is_typing: true },
    });
    expect(typing.status).toBe(202);
    await sub1.waitForEvent((e) => e.event === 'user_typing');
    const del = await env.api(env.b, 'DELETE', `/api/comments/${c1.id}`, { user: 'alice' });
    expect(del.status).toBe(204);
    await sub1.waitForEvent(isComment('comment_deleted', c1.id));

    // Once track 2's later event has arrived, any track 1 event would have arrived before it.
    const c2 = await env.postComment(env.a, 'alice', track2, 'only for track 2');
    for (const s of [sub2, sub2onA]) {
      await s.waitForEvent(isComment('new_comment', c2.id));
      const events = s.events();
      expect(events.map((e) => e.event)).toEqual(['connected', 'new_comment']);
      for (const e of events) expect(e.data.track_id).toBe(track2);
      expect(s.storedEvents().map((e) => e.id)).toEqual(['1']);
    }
    expect(sub1.events().every((e) => e.data.track_id === track1)).toBe(true);
    for (const s of [sub1, sub2, sub2onA]) s.close();
  });
});

describe('stream format', () => {
  test('headers, a retry hint, then connected; every event names its type and track; ids increase', async () => {
    const track = await env.newTrack();
    // Ask for compression: an event stream must still not be compressed.
    const s = await env.trackStream(env.b, 'bob', track, {
      headers: { 'Accept-Encoding': 'gzip, deflate, br' },
    });
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(s.headers['cache-control']).toMatch(/no-cache/);
    expect(s.headers['x-accel-buffering']).toBe('no');
    expect(s.headers['content-encoding']).toBeUndefined();

    await connected(s);
    const [first, second] = s.items;
    expect(first).toEqual({ kind: 'retry', ms: 1500, at: expect.any(Number) });
    expect(second?.kind).toBe('event');
    const hello = s.events()[0]!;
    expect(hello.event).toBe('connected');
    expect(hello.id).toBeUndefined();
    expect(hello.data).toEqual({
      type: 'connected',
      track_id: track,
      message: expect.any(String),
      connection_id: expect.any(String),
    });
    expect(hello.data.connection_id!.length).toBeGreaterThan(0);

    const other = await env.trackStream(env.a, 'bob', track);
    const otherHello = await connected(other);
    expect(otherHello.data.connection_id).not.toBe(hello.data.connection_id);

    const a = await env.postComment(env.a, 'alice', track, 'one');
    const b = await env.postComment(env.b, 'carol', track, 'two', 3);
    const edit = await env.api(env.a, 'PATCH', `/api/comments/${a.id}`, {
      user: 'alice',
      body: { content: 'one, edited' },
    });
    expect(edit.status).toBe(200);
    const del = await env.api(env.b, 'DELETE', `/api/comments/${b.id}`, { user: 'carol' });
    expect(del.status).toBe(204);
    await s.waitForEvent(isComment('comment_deleted', b.id));

    const events = s.events();
    for (const e of events) {
      expect(e.parseError).toBeUndefined();
      expect(e.data.type).toBe(e.event);
      expect(e.data.track_id).toBe(track);
    }
    const ids = numericIds(s.storedEvents());
    expect(ids).toEqual([1, 2, 3, 4]);
    for (let i = 1; i < ids.length; i++) expect(ids[i]!).toBeGreaterThan(ids[i - 1]!);
    s.close();
    other.close();
  });

  test('the personal stream starts the same way', async () => {
    const s = await env.personalStream(env.a, 'frank');
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(s.headers['x-accel-buffering']).toBe('no');
    const hello = await connected(s);
    expect(s.items[0]?.kind).toBe('retry');
    expect(hello.id).toBeUndefined();
    expect(hello.data.type).toBe('connected');
    expect('track_id' in hello.data).toBe(true);
    expect(hello.data.connection_id).toEqual(expect.any(String));
    s.close();
  });

  test('a raw HTTP/1.1 response is an identity body that stays open', async () => {
    const track = await env.newTrack();
    const raw = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get(
        `${env.a.url}/api/tracks/${track}/events`,
        { headers: { Authorization: `Bearer ${env.tokens.bob}` }, agent: false },
        resolve,
      );
      req.on('error', reject);
    });
    try {
      expect(raw.statusCode).toBe(200);
      // Nothing may buffer the stream: no Content-Length that would end it.
      expect(raw.headers['content-length']).toBeUndefined();
      const firstChunk = await new Promise<string>((resolve) =>
        raw.once('data', (c: Buffer) => resolve(c.toString('utf8'))),
      );
      expect(firstChunk).toMatch(/^retry: ?\d+\n/);
    } finally {
      raw.destroy();
    }
  });
});

describe('mentions on personal streams across replicas', () => {
  test('named users and the album creator get one mention each; the author and others none', async () => {
    const track = await env.newTrack();
    const bob = await env.personalStream(env.b, 'bob');
    const carol = await env.personalStream(env.a, 'carol');
    const creator = await env.personalStream(env.b, 'creator');
    const alice = await env.personalStream(env.a, 'alice');
    const dave = await env.personalStream(env.b, 'dave');
    const erin = await env.personalStream(env.a, 'erin');
    const all = [bob, carol, creator, alice, dave, erin];
    await Promise.all(all.map(connected));

    // The author names herself too: she must still get nothing.
    const first = await env.postComment(
      env.a,
      'alice',
      track,
      'listen @bob and @carol, this is mine (@alice)',
      30,
    );
    const fromAlice = { id: LIVE_USERS.alice.id, username: 'alice' };
    // A mention's comment names, of everyone named, only its recipient (the creator: nobody).
    const only = (c: CommentJson, user: LiveUser) => ({
      ...c,
      mentions: c.mentions.filter((m) => m.id === LIVE_USERS[user].id),
    });
    for (const [s, user] of [
      [bob, 'bob'],
      [carol, 'carol'],
      [creator, 'creator'],
    ] as const) {
      const e = await s.waitForEvent((e) => e.event === 'mention');
      expect(e.data).toEqual({
        type: 'mention',
        track_id: track,
        comment: only(first, user),
        from_user: fromAlice,
      });
    }

    // A later comment mentions alice and dave: their first mention must be this one (id 1).
    const second = await env.postComment(env.b, 'bob', track, '@alice @dave have you heard this?');
    const fromBob = { id: LIVE_USERS.bob.id, username: 'bob' };
    for (const [s, user] of [
      [alice, 'alice'],
      [dave, 'dave'],
    ] as const) {
      const e = await s.waitForEvent((e) => e.event === 'mention');
      expect(e.id).toBe('1');
      expect(e.data).toEqual({
        type: 'mention',
        track_id: track,
        comment: only(second, user),
        from_user: fromBob,
      });
    }
    const creatorMentions = await creator.waitForEvents((e) => e.event === 'mention', 2);
    expect(creatorMentions.map((e) => e.data.comment!.id)).toEqual([first.id, second.id]);

    // erin was never named: once a third comment naming her arrived, it is her only mention.
    const third = await env.postComment(env.a, 'carol', track, 'and @erin');
    const erinMention = await erin.waitForEvent((e) => e.event === 'mention');
    expect(erinMention.data.comment!.id).toBe(third.id);
    expect(erinMention.id).toBe('1');
    await creator.waitForEvents((e) => e.event === 'mention', 3);

    const mentionsOf = (s: SseClient) => s.events('mention').map((e) => e.data.comment!.id);
    expect(mentionsOf(bob)).toEqual([first.id]); // not for his own second comment
    expect(mentionsOf(alice)).toEqual([second.id]);
    expect(mentionsOf(dave)).toEqual([second.id]);
    expect(mentionsOf(erin)).toEqual([third.id]);
    expect(mentionsOf(creator)).toEqual([first.id, second.id, third.id]);
    // Personal streams carry mentions only (no track events).
    for (const s of all) {
      expect(s.events().filter((e) => e.event !== 'connected' && e.event !== 'mention')).toEqual(
        [],
      );
    }
    for (const s of all) s.close();
  });
});

describe('heartbeat', () => {
  test('an idle stream receives `: ping` comments repeatedly (HEARTBEAT_MS=200)', async () => {
    const track = await env.newTrack();
    const s = await env.trackStream(env.b, 'bob', track);
    const hello = await connected(s);
    // The default interval is 15 s: four pings within 5 s can only come from HEARTBEAT_MS.
    const pings = await s.waitForComments((t) => t === 'ping', 4, 5000);
    // Spread out over time, not sent in one burst (loose: a shared 2-core machine).
    expect(pings[3]!.at - hello.at).toBeGreaterThanOrEqual(400);
    expect(s.events().map((e) => e.event)).toEqual(['connected']);
    s.close();
  });
});
