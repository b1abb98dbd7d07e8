/**
 * Deleted means gone (contract section 7), across 2 real replicas, Redis and PostgreSQL:
 * once a comment is deleted, a replay of the history (`Last-Event-ID` from before the
 * delete) on another replica carries none of its content, neither on the track stream nor
 * on personal streams; once a comment is edited, a replay carries only its current content.
 * The replayed events keep their ids and order.
 */
import {
  LIVE_USERS,
  connected,
  startLiveEnv,
  type LiveEnv,
  type LiveUser,
} from './support/live-env';
import {
  numericIds,
  resumeFromId,
  type CommentJson,
  type SseClient,
  type SseEvent,
} from './support/sse-client';

let env: LiveEnv;

beforeAll(async () => {
  env = await startLiveEnv();
});

afterAll(async () => {
  await env?.close();
});

/** Texts that must not survive: the deleted comment's, its reply's, an edit's old version. */
const SECRET = '555-0100';
const REPLY_SECRET = 'flat 4B';
const DRAFT = 'draft 7-7-7';

const trackUrl = (replica: LiveEnv['a'], track: string) =>
  `${replica.url}/api/tracks/${encodeURIComponent(track)}/events`;

/** The (id, type) sequence of a stream's stored events. */
const shape = (events: SseEvent[]) => events.map((e) => `${e.id} ${e.event}`);

function expectNoStaleText(events: SseEvent[]): void {
  for (const e of events) {
    expect(e.rawData).not.toContain(SECRET);
    expect(e.rawData).not.toContain(REPLY_SECRET);
    expect(e.rawData).not.toContain(DRAFT);
  }
}

/** Replays `user`'s view of `url` from the beginning and waits for `count` stored events. */
async function replayAll(url: string, user: LiveUser, count: number): Promise<SseClient> {
  const s = env.track(await resumeFromId(url, '0', { token: env.tokens[user] }));
  expect(s.status).toBe(200);
  await s.waitForEvents((e) => e.id !== undefined, count);
  return s;
}

test('a replay on the other replica carries no deleted or superseded text; ids and order unchanged', async () => {
  const track = await env.newTrack();
  const live = await env.trackStream(env.a, 'erin', track);
  const bobLive = await env.personalStream(env.a, 'bob');
  const daveLive = await env.personalStream(env.a, 'dave');
  await Promise.all([live, bobLive, daveLive].map(connected));

  // On replica a: a comment with private data naming bob; a reply to it on b naming dave.
  const secret = await env.postComment(env.a, 'alice', track, `my phone is ${SECRET} @bob`);
  const replyRes = await env.api(env.b, 'POST', `/api/tracks/${track}/comments`, {
    user: 'carol',
    body: { content: `I live at ${REPLY_SECRET} @dave`, parent_id: secret.id },
  });
  expect(replyRes.status).toBe(201);
  const reply = (replyRes.json as { comment: CommentJson }).comment;
  // A comment naming dave, edited twice on the other replica: only its last text may remain.
  const kept = await env.postComment(env.b, 'alice', track, `${DRAFT} @dave`);
  for (const [replica, content] of [
    [env.a, 'final text'],
    [env.b, 'final text, twice'],
  ] as const) {
    const res = await env.api(replica, 'PATCH', `/api/comments/${kept.id}`, {
      user: 'alice',
      body: { content },
    });
    expect(res.status).toBe(200);
  }
  const del = await env.api(env.b, 'DELETE', `/api/comments/${secret.id}`, { user: 'alice' });
  expect(del.status).toBe(204);

  // Live, everything was seen as it happened: 3 new, 2 edited, 2 deleted (parent and reply).
  await live.waitForEvents((e) => e.id !== undefined, 7);
  await bobLive.waitForEvents((e) => e.event === 'mention', 1);
  await daveLive.waitForEvents((e) => e.event === 'mention', 2);

  // Replayed on replica b from before all of it.
  const replay = await replayAll(trackUrl(env.b, track), 'frank', 7);
  const replayed = replay.storedEvents();
  expect(shape(replayed)).toEqual(shape(live.storedEvents()));
  expect(numericIds(replayed)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  expectNoStaleText(replayed);
  const newComment = (id: number) =>
    replayed.find((e) => e.event === 'new_comment' && e.data.comment?.id === id)!.data.comment!;
  // Deleted: the events stay, their content is gone (and the names it made).
  expect(newComment(secret.id)).toMatchObject({ id: secret.id, content: '', mentions: [] });
  expect(newComment(reply.id)).toMatchObject({ id: reply.id, content: '', mentions: [] });
  // Edited: the original event and every edit event carry the current text only.
  expect(newComment(kept.id)).toMatchObject({
    id: kept.id,
    content: 'final text, twice',
    mentions: [],
    is_edited: true,
  });
  const edits = replayed.filter((e) => e.event === 'comment_edited');
  expect(edits.map((e) => e.data.content)).toEqual(['final text, twice', 'final text, twice']);
  expect(
    replayed.filter((e) => e.event === 'comment_deleted').map((e) => e.data.comment_id),
  ).toEqual([secret.id, reply.id]);

  // Personal streams replayed on b: the mentions are there, their content is not.
  const bobReplay = await replayAll(`${env.b.url}/api/me/events`, 'bob', 1);
  expect(shape(bobReplay.storedEvents())).toEqual(shape(bobLive.storedEvents()));
  expectNoStaleText(bobReplay.storedEvents());
  expect(bobReplay.storedEvents()[0]!.data).toMatchObject({
    type: 'mention',
    comment: { id: secret.id, content: '', mentions: [] },
    from_user: { id: LIVE_USERS.alice.id, username: 'alice' },
  });
  const daveReplay = await replayAll(`${env.b.url}/api/me/events`, 'dave', 2);
  expect(shape(daveReplay.storedEvents())).toEqual(shape(daveLive.storedEvents()));
  expectNoStaleText(daveReplay.storedEvents());
  expect(daveReplay.storedEvents().map((e) => e.data.comment)).toMatchObject([
    { id: reply.id, content: '', mentions: [] },
    { id: kept.id, content: 'final text, twice', mentions: [] },
  ]);

  // Nor is it stored anywhere, nor listed.
  const stored = await env.sql<{ n: number }>(
    `SELECT count(*)::int AS n FROM stream_events
      WHERE data::text LIKE '%' || $1 || '%' OR data::text LIKE '%' || $2 || '%'
         OR data::text LIKE '%' || $3 || '%'`,
    [SECRET, REPLY_SECRET, DRAFT],
  );
  expect(stored).toEqual([{ n: 0 }]);
  const list = await env.api(env.a, 'GET', `/api/tracks/${track}/comments`, { user: 'frank' });
  expect((list.json as { comments: CommentJson[] }).comments.map((c) => c.content)).toEqual([
    'final text, twice',
  ]);
});
