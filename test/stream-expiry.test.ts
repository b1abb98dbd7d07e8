/**
 * Streams end with their token (contract section 7): a stream opened with a token that has
 * an `exp` is ended by the server within 5 s after `exp` (track and personal streams, Bearer
 * and cookie, lean entry and express route); the client reconnects with a fresh token and
 * resumes with Last-Event-ID, missing nothing.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { openSse, resumeSse, type SseClient, type SseOpenOptions } from './support/sse-client';
import { TRACK_UNTIMED, USERS, useRestEnv, userToken } from './support/rest-env';

const env = useRestEnv();
const BOUND_MS = 5_000;

const opened: SseClient[] = [];
afterEach(() => {
  for (const c of opened.splice(0)) c.close();
});

/** The token's `exp` in epoch ms. */
function expOf(token: string): number {
  const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as {
    exp: number;
  };
  return payload.exp * 1000;
}

function auth(token: string, how: 'bearer' | 'cookie'): SseOpenOptions {
  return how === 'bearer' ? { token } : { headers: { Cookie: `access_token=${token}` } };
}

async function openStream(base: string, path: string, opts: SseOpenOptions): Promise<SseClient> {
  const c = await openSse(`${base}${path}`, opts);
  opened.push(c);
  expect(c.status).toBe(200);
  await c.waitForEvent((e) => e.event === 'connected');
  return c;
}

/** Waits for the server to end `stream`: not before `expMs`, and within BOUND_MS after it. */
async function expectEndedAfter(stream: SseClient, expMs: number): Promise<void> {
  await stream.waitForClose(Math.max(0, expMs + BOUND_MS - Date.now()));
  const endedAt = Date.now();
  expect(endedAt).toBeGreaterThanOrEqual(expMs);
  expect(stream.endReason).not.toBe('closed by client');
}

const TRACK_PATH = `/api/tracks/${TRACK_UNTIMED}/events`;
const ME_PATH = '/api/me/events';

test.each([
  ['track stream, Bearer', TRACK_PATH, 'bearer'],
  ['track stream, cookie', TRACK_PATH, 'cookie'],
  ['personal stream, Bearer', ME_PATH, 'bearer'],
  ['personal stream, cookie', ME_PATH, 'cookie'],
] as const)('%s: ended within 5 s after exp', async (_name, path, how) => {
  const short = await userToken(USERS.dan.id, 2);
  const long = await userToken(USERS.dan.id, 3600);
  const expiring = await openStream(env().url, path, auth(short, how));
  const lasting = await openStream(env().url, path, auth(long, how));
  await expectEndedAfter(expiring, expOf(short));
  // Only the stream of the expired token ended: the other still delivers.
  expect(lasting.ended).toBe(false);
  await env().postComment('bob', TRACK_UNTIMED, { content: 'after the expiry @dan' });
  await lasting.waitForEvent((e) => e.event === (path === ME_PATH ? 'mention' : 'new_comment'));
});

test('the express route (without the lean entry) ends the stream at exp too', async () => {
  const server = http.createServer(env().running.expressWithoutLeanPaths);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const short = await userToken(USERS.dan.id, 2);
    const track = await openStream(base, TRACK_PATH, auth(short, 'bearer'));
    const mine = await openStream(base, ME_PATH, auth(short, 'cookie'));
    await expectEndedAfter(track, expOf(short));
    await expectEndedAfter(mine, expOf(short));
  } finally {
    // The hub owns the streams' connections: the server cannot close them, the clients do.
    for (const c of opened.splice(0)) c.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('after the expiry the client resumes with a fresh token and Last-Event-ID, missing nothing', async () => {
  const short = await userToken(USERS.creator.id, 2);
  const first = await openStream(env().url, ME_PATH, auth(short, 'cookie'));
  // The album's creator gets a mention for every comment on its tracks.
  const before = await env().postComment('bob', TRACK_UNTIMED, { content: 'before the expiry' });
  await first.waitForEvent((e) => e.event === 'mention' && e.data.comment?.id === before.id);
  await expectEndedAfter(first, expOf(short));

  const during = await env().postComment('bob', TRACK_UNTIMED, { content: 'while away' });
  const fresh = await userToken(USERS.creator.id, 3600);
  const second = await resumeSse(first, `${env().url}${ME_PATH}`, auth(fresh, 'cookie'));
  opened.push(second);
  expect(second.status).toBe(200);
  const missed = await second.waitForEvent((e) => e.event === 'mention');
  expect(missed.data.comment?.id).toBe(during.id);
  expect(Number(missed.id)).toBe(Number(first.lastEventId) + 1);
  expect(second.events('reset')).toEqual([]);
});
