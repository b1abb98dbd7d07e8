/**
 * Bounded requests (contract section 7): a request whose headers and body have not fully
 * arrived within REQUEST_TIMEOUT_MS is answered 408 or closed, on the lean comment path and
 * in express alike; an open SSE stream is not a request in progress and stays open.
 */
import net from 'node:net';
import { loadConfig } from '../src/config/config';
import { openSse, type SseClient } from './support/sse-client';
import { TRACK_UNTIMED, USERS, rowCounts, useRestEnv } from './support/rest-env';

const TIMEOUT_MS = 400;
const env = useRestEnv({ env: { REQUEST_TIMEOUT_MS: String(TIMEOUT_MS), HEARTBEAT_MS: '100' } });

/** What a connection got back, once the server closed it. */
interface Closed {
  text: string;
  /** ms from the last byte sent to the close. */
  afterMs: number;
}

const sockets = new Set<net.Socket>();
afterEach(() => {
  for (const s of sockets) s.destroy();
  sockets.clear();
});

/**
 * Sends `bytes` (and nothing more) on a fresh connection and resolves once the server closes
 * it; rejects if it is still open after `boundMs`.
 */
function sendAndAwaitClose(bytes: string, boundMs = 8000): Promise<Closed> {
  return new Promise((resolve, reject) => {
    const { port } = env().running.server.address() as net.AddressInfo;
    const socket = net.connect(port, '127.0.0.1');
    sockets.add(socket);
    let text = '';
    let sentAt = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`still open ${boundMs} ms after a partial request; got: ${text}`));
    }, boundMs);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (text += d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, afterMs: Date.now() - sentAt });
    });
    socket.on('connect', () => {
      if (bytes !== '') socket.write(bytes);
      sentAt = Date.now();
    });
  });
}

/** The answer is a 408 with the contract's error body, or nothing at all (closed). */
function expectTimedOut(closed: Closed): void {
  if (closed.text === '') return;
  expect(closed.text).toMatch(/^HTTP\/1\.1 408 /);
  const body = JSON.parse(closed.text.slice(closed.text.indexOf('\r\n\r\n') + 4)) as {
    error: { code: string };
  };
  expect(body.error.code).toBe('request_timeout');
}

const head = (lines: string[]) => lines.join('\r\n') + '\r\n\r\n';

describe('a request that does not fully arrive in time', () => {
  test('JSON POST (the lean comment path) declaring 30 bytes and sending 1: 408, nothing written', async () => {
    const before = await rowCounts(env().pg);
    const closed = await sendAndAwaitClose(
      head([
        `POST /api/tracks/${TRACK_UNTIMED}/comments HTTP/1.1`,
        'Host: 127.0.0.1',
        `Authorization: Bearer ${env().tokens.bob}`,
        'Content-Type: application/json',
        'Content-Length: 30',
      ]) + '{',
    );
    expectTimedOut(closed);
    expect(await rowCounts(env().pg)).toEqual(before);
  });

  test('form POST (express) declaring 30 bytes and sending 1: 408, nothing written', async () => {
    const before = await rowCounts(env().pg);
    const closed = await sendAndAwaitClose(
      head([
        `POST /api/tracks/${TRACK_UNTIMED}/comments HTTP/1.1`,
        'Host: 127.0.0.1',
        `Authorization: Bearer ${env().tokens.bob}`,
        'Content-Type: application/x-www-form-urlencoded',
        'Content-Length: 30',
      ]) + 'c',
    );
    expectTimedOut(closed);
    expect(await rowCounts(env().pg)).toEqual(before);
  });

  test('headers that never end: 408 or closed', async () => {
    const closed = await sendAndAwaitClose(
      `POST /api/tracks/${TRACK_UNTIMED}/comments HTTP/1.1\r\nHost: 127.0.0.1\r\n`,
    );
    expectTimedOut(closed);
  });

  test('a stream request whose headers never end: 408 or closed', async () => {
    const closed = await sendAndAwaitClose(
      `GET /api/me/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${env().tokens.bob}\r\n`,
    );
    expectTimedOut(closed);
  });

  test('a connection that sends nothing is closed', async () => {
    const closed = await sendAndAwaitClose('');
    expect(closed.text === '' || /^HTTP\/1\.1 408 /.test(closed.text)).toBe(true);
  });

  test('a complete request is answered as usual', async () => {
    const body = JSON.stringify({ content: 'in time' });
    const closed = await sendAndAwaitClose(
      head([
        `POST /api/tracks/${TRACK_UNTIMED}/comments HTTP/1.1`,
        'Host: 127.0.0.1',
        `Authorization: Bearer ${env().tokens.bob}`,
        'Content-Type: application/json',
        `Content-Length: ${Buffer.byteLength(body)}`,
        'Connection: close',
      ]) + body,
    );
    expect(closed.text).toMatch(/^HTTP\/1\.1 201 /);
  });
});

describe('an open stream is not a request in progress', () => {
  /** Waits (on heartbeats) until the stream has been open for `ms`; it must still be open. */
  async function heldOpenFor(stream: SseClient, ms: number): Promise<void> {
    const openedAt = Date.now();
    await stream.waitForComments(() => Date.now() - openedAt > ms, 1, ms + 10_000);
    expect(stream.ended).toBe(false);
  }

  test.each([
    ['track stream, Bearer', `/api/tracks/${TRACK_UNTIMED}/events`, 'bearer'],
    ['personal stream, cookie', '/api/me/events', 'cookie'],
  ])('%s stays open past REQUEST_TIMEOUT_MS and keeps delivering', async (_name, path, how) => {
    const token = env().tokens.creator;
    const stream = await openSse(
      `${env().url}${path}`,
      how === 'bearer' ? { token } : { headers: { Cookie: `access_token=${token}` } },
    );
    try {
      expect(stream.status).toBe(200);
      await stream.waitForEvent((e) => e.event === 'connected');
      await heldOpenFor(stream, TIMEOUT_MS * 5);
      // Still a working stream: a comment (which mentions the album's creator) arrives.
      await env().postComment('bob', TRACK_UNTIMED, { content: 'still there?' });
      const type = path.startsWith('/api/me') ? 'mention' : 'new_comment';
      const e = await stream.waitForEvent((ev) => ev.event === type);
      expect(e.data.comment?.user.id).toBe(USERS.bob.id);
    } finally {
      stream.close();
    }
  });
});

describe('REQUEST_TIMEOUT_MS', () => {
  const base = { NODE_ENV: 'test' };
  test('defaults to 10 s', () => {
    expect(loadConfig(base).requestTimeoutMs).toBe(10_000);
  });
  test.each(['abc', '-1', '50', '1.5'])('refuses %p', (value) => {
    expect(() => loadConfig({ ...base, REQUEST_TIMEOUT_MS: value })).toThrow(/REQUEST_TIMEOUT_MS/);
  });
});
