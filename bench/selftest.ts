/**
 * Self-test of the bench's load generator against a fake SSE server (no real
 * service needed): the parser on every split of a byte stream, the
 * cross-process clock, and the delivery accounting against faults injected
 * by rule. Run: `npx tsx bench/selftest.ts` (exit code 0 = all passed).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { FakeSseServer, type FakeFaults } from './lib/fake-server';
import { waitFor } from '../harness/wait';
import { runLoad } from './lib/load';
import { PROTOCOLS } from './lib/protocol';
import { WorkerGroup } from './lib/subscriber-group';
import { SubscriberPool } from './lib/subscriber-pool';
import { copyFrame, SseResponseParser, type FrameCopy } from './lib/sse-parser';

const results: { name: string; ok: boolean; detail?: string }[] = [];

async function check(name: string, fn: () => Promise<void> | void): Promise<void> {
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok   ${name}`);
  } catch (err) {
    results.push({ name, ok: false, detail: (err as Error).stack });
    console.log(`FAIL ${name}\n${(err as Error).stack}`);
  }
}

/**
 * Parses `pieces` in order. With `reuseBuffer`, each piece is pushed from one buffer that is
 * overwritten afterwards, as the pool's shared read buffer is: the parser must keep nothing of it.
 */
function parseAll(
  pieces: Buffer[],
  reuseBuffer = false,
): {
  status: number | undefined;
  frames: FrameCopy[];
  p: SseResponseParser;
} {
  const frames: FrameCopy[] = [];
  let status: number | undefined;
  const p = new SseResponseParser(
    (h) => (status = h.status),
    (f) => frames.push(copyFrame(f)),
  );
  const readBuffer = Buffer.alloc(Math.max(0, ...pieces.map((piece) => piece.length)));
  for (const piece of pieces) {
    if (!reuseBuffer) {
      p.push(piece);
      continue;
    }
    piece.copy(readBuffer);
    p.push(readBuffer.subarray(0, piece.length));
    readBuffer.fill('#');
  }
  return { status, frames, p };
}

function chunkedBody(body: Buffer, sizes: number[]): Buffer {
  const parts: Buffer[] = [];
  let pos = 0;
  let i = 0;
  while (pos < body.length) {
    const n = Math.min(sizes[i++ % sizes.length]!, body.length - pos);
    parts.push(
      Buffer.from(`${n.toString(16)};ext=1\r\n`),
      body.subarray(pos, pos + n),
      Buffer.from('\r\n'),
    );
    pos += n;
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

const sseBody = (eol: string): string =>
  [
    `retry: 2000${eol}${eol}`,
    `: ping${eol}${eol}`,
    `event: connected${eol}data: {"type":"connected","message":"héllo ✓"}${eol}${eol}`,
    `id: 41${eol}event: new_comment${eol}data: {"a":1}${eol}${eol}`,
    `event: lonely${eol}${eol}`, // no data: not dispatched
    `data: line1${eol}data:line2${eol}data${eol}${eol}`, // default event name, keeps id 41
    `id: 42${eol}event: comment_deleted${eol}data: {"comment_id":7}${eol}${eol}`,
    `id${eol}event: user_typing${eol}data: {}${eol}${eol}`, // empty id resets the last id
  ].join('');

const expectedFrames: FrameCopy[] = [
  { id: undefined, event: 'connected', data: '{"type":"connected","message":"héllo ✓"}' },
  { id: '41', event: 'new_comment', data: '{"a":1}' },
  { id: '41', event: 'message', data: 'line1\nline2\n' },
  { id: '42', event: 'comment_deleted', data: '{"comment_id":7}' },
  { id: '', event: 'user_typing', data: '{}' },
];

async function parserTests(): Promise<void> {
  const head = (chunked: boolean) =>
    'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n' +
    (chunked ? 'Transfer-Encoding: chunked\r\n' : '') +
    '\r\n';
  for (const eol of ['\n', '\r\n', '\r']) {
    for (const chunked of [false, true]) {
      const body = Buffer.from(sseBody(eol));
      const bytes = Buffer.concat([
        Buffer.from(head(chunked)),
        chunked ? chunkedBody(body, [1, 7, 30, 3]) : body,
      ]);
      const label = `${JSON.stringify(eol)}, ${chunked ? 'chunked' : 'identity'}`;
      await check(`parser: whole stream (${label})`, () => {
        const r = parseAll([bytes]);
        assert.equal(r.status, 200);
        assert.deepEqual(r.frames, expectedFrames);
      });
      await check(`parser: every 2-way split (${label})`, () => {
        for (let cut = 0; cut <= bytes.length; cut++) {
          const r = parseAll([bytes.subarray(0, cut), bytes.subarray(cut)]);
          assert.deepEqual(r.frames, expectedFrames, `split at ${cut}`);
        }
      });
      await check(`parser: every 2-way split, read into one reused buffer (${label})`, () => {
        for (let cut = 0; cut <= bytes.length; cut++) {
          const r = parseAll([bytes.subarray(0, cut), bytes.subarray(cut)], true);
          assert.deepEqual(r.frames, expectedFrames, `split at ${cut}`);
        }
      });
      await check(`parser: one byte at a time (${label})`, () => {
        const pieces = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
        assert.deepEqual(parseAll(pieces).frames, expectedFrames);
      });
    }
  }
  await check('parser: non-200 keeps status and body, emits no frame', () => {
    const bytes = Buffer.from(
      'HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 54\r\n\r\n' +
        '{"error":{"code":"unauthorized","message":"no token"}}',
    );
    const r = parseAll([bytes.subarray(0, 40), bytes.subarray(40, 100)]);
    assert.equal(r.status, 401);
    assert.equal(r.p.ended, false);
    r.p.push(bytes.subarray(100));
    assert.equal(r.p.ended, true, 'Content-Length reached');
    assert.equal(r.frames.length, 0);
    assert.match(r.p.errorBody, /unauthorized/);
  });
  await check('parser: the final chunk ends the stream', () => {
    const body = Buffer.from('data: x\n\n');
    const r = parseAll([Buffer.from(head(true)), chunkedBody(body, [4])]);
    assert.equal(r.frames.length, 1);
    assert.equal(r.p.ended, true);
    const open = parseAll([Buffer.from(head(true)), chunkedBody(body, [4]).subarray(0, 20)]);
    assert.equal(open.p.ended, false);
  });
  await check('parser: garbage is a protocol error', () => {
    const r = parseAll([Buffer.from('SSH-2.0-OpenSSH\r\n\r\n')]);
    assert.ok(r.p.protocolError);
  });
}

async function clockTest(): Promise<void> {
  await check('clock: a worker process reads the same clock (|offset| < 0.5 ms)', async () => {
    const g = await WorkerGroup.start({
      runTag: 'x',
      trackIds: [],
      targets: [],
      tokens: [],
      subscribers: [],
      connectConcurrency: 1,
      reconnectDelayMs: 10,
    });
    try {
      const c = await g.clockCheck(50);
      console.log(`     offset ${c.offsetMs.toFixed(4)} ms, best rtt ${c.rttMs.toFixed(3)} ms`);
      assert.ok(Math.abs(c.offsetMs) < 0.5, `offset ${c.offsetMs}`);
    } finally {
      await g.close();
    }
  });
}

async function loadTest(label: string, workers: number, faults: FakeFaults): Promise<void> {
  const trackIds = Array.from({ length: 10 }, (_, i) => `trk-${i}`);
  const server = new FakeSseServer(trackIds, faults);
  await server.listen();
  try {
    const target = { host: '127.0.0.1', port: server.port };
    const users = 20;
    const r = await runLoad({
      runTag: 'selftest',
      trackIds,
      subscriberTargets: [target, target],
      postTargets: [target, target],
      tokens: Array.from({ length: users }, (_, u) => `user-${u}`),
      subscribers: 200,
      subscribersPerUser: 10,
      comments: 100,
      rate: 200,
      workers,
      connectConcurrency: 50,
      settleMs: 3000,
      // Longer than the gap between two comments on a track (10 tracks at 200/s: 50 ms),
      // so a dropped stream always misses events and must get them by replay.
      reconnectDelayMs: 150,
    });
    const c = server.counts;
    console.log(`     settled in ${r.settleMs} ms, all arrived: ${r.allArrived}`);
    await check(`load ${label}: every subscriber connected`, () => {
      assert.equal(r.subscribers.connected, 200);
      assert.equal(r.subscribers.failed, 0);
      assert.deepEqual(r.subscribers.perTarget, [100, 100]);
    });
    await check(`load ${label}: posted = requested − injected POST failures`, () => {
      assert.equal(r.comments.posted, 100 - c.failedPosts);
      assert.equal(
        Object.values(r.comments.failed).reduce((a, b) => a + b, 0),
        c.failedPosts,
      );
    });
    await check(`load ${label}: expected = posted comments × subscribers per track (20)`, () => {
      assert.equal(r.deliveries.expected, r.comments.posted * 20);
    });
    await check(
      `load ${label}: lost = dropped (${c.dropped}), duplicates = duplicated (${c.duplicated})`,
      () => {
        assert.equal(r.deliveries.lost, c.dropped);
        assert.equal(r.deliveries.duplicates, c.duplicated);
        assert.equal(r.deliveries.received, r.deliveries.unique + r.deliveries.duplicates);
        assert.equal(r.deliveries.unexpected, 0);
        assert.equal(r.deliveries.foreign, 0);
        assert.equal(r.latencyMs.count, r.deliveries.unique);
      },
    );
    await check(
      `load ${label}: misrouted = injected (${c.misrouted}), not counted as deliveries`,
      () => {
        assert.equal(r.deliveries.misrouted, c.misrouted);
      },
    );
    await check(
      `load ${label}: dropped streams resume with Last-Event-ID (${c.disconnected})`,
      () => {
        assert.equal(r.deliveries.unexpectedCloses, c.disconnected);
        assert.equal(r.deliveries.reconnects, c.disconnected);
        assert.equal(r.deliveries.idRegressions, 0);
        if (c.disconnected > 0) assert.ok(c.replayed > 0, 'some events were replayed');
      },
    );
    // Machine-load independent: a delivery never precedes its POST (one clock), and
    // the open-loop poster never runs faster than asked.
    await check(`load ${label}: latency and rates are sane`, () => {
      assert.ok(r.latencyMs.min >= 0 && Number.isFinite(r.latencyMs.max), `min ${r.latencyMs.min}`);
      assert.ok(r.postRatePerS > 0 && r.postRatePerS <= 220, `rate ${r.postRatePerS}`);
      assert.ok(r.deliveriesPerSPostWindow > 0);
      assert.ok(r.clock.offsetMsMaxAbs < 0.5);
    });
    console.log(
      `     ${label}: p50 ${r.latencyMs.p50} p99 ${r.latencyMs.p99} ms, lost ${r.deliveries.lost},` +
        ` dup ${r.deliveries.duplicates}, misrouted ${r.deliveries.misrouted}, reconnects ${r.deliveries.reconnects}`,
    );
  } finally {
    await server.close();
  }
}

async function failedConnectTest(): Promise<void> {
  const server = new FakeSseServer(['a']);
  await server.listen();
  try {
    await check('pool: a refused stream is a failed connect with its HTTP status', async () => {
      const pool = new SubscriberPool({
        runTag: 'x',
        trackIds: ['a', 'missing'],
        targets: [{ host: '127.0.0.1', port: server.port }],
        tokens: ['user-1', 'not-a-token'],
        subscribers: [
          [0, 0, 0, 0],
          [1, 0, 0, 1],
          [2, 1, 0, 0],
        ],
        connectConcurrency: 3,
        reconnectDelayMs: 10,
      });
      await pool.openAll();
      const r = pool.result();
      pool.close();
      assert.equal(r.connected, 1);
      assert.equal(r.failedConnects, 2);
      assert.equal(r.httpErrors['401']?.count, 1);
      assert.match(r.httpErrors['401']!.sample, /unauthorized/);
      assert.equal(r.httpErrors['404']?.count, 1);
    });
  } finally {
    await server.close();
  }
}

async function connectTimeoutTest(): Promise<void> {
  // A server that accepts and never answers: the open must give up, not hang the bench.
  const held = new Set<net.Socket>();
  const silent = net.createServer((socket) => {
    held.add(socket);
    socket.on('close', () => held.delete(socket));
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as net.AddressInfo).port;
  try {
    await check('pool: a stream that never answers fails after connectTimeoutMs', async () => {
      const pool = new SubscriberPool({
        runTag: 'x',
        trackIds: ['a'],
        targets: [{ host: '127.0.0.1', port }],
        tokens: ['user-1'],
        subscribers: [[0, 0, 0, 0]],
        connectConcurrency: 1,
        reconnectDelayMs: 10,
        connectTimeoutMs: 300,
      });
      const started = Date.now();
      await pool.openAll();
      const r = pool.result();
      pool.close();
      assert.equal(r.failedConnects, 1);
      assert.equal(r.socketErrors['connect timeout'], 1);
      assert.ok(Date.now() - started < 5000);
    });
  } finally {
    for (const socket of held) socket.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  }
}

async function nchanProtocolTest(): Promise<void> {
  // Nchan's stream: a 200 head and a `: hi` comment, no `connected` event; ids are `time:tag`.
  const frame = (n: number, track: string) =>
    `event: new_comment\nid: 1796437430:${n}\ndata: ${PROTOCOLS.nchan.postBody('x', n, track, 0)}\n\n`;
  let requestLine = '';
  const server = net.createServer((socket) => {
    socket.once('data', (d) => {
      requestLine = d.toString('latin1').split('\r\n')[0]!;
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n: hi\n\n');
      socket.write(frame(3, 'a') + frame(4, 'b'));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const pool = new SubscriberPool({
    runTag: 'x',
    trackIds: ['a'],
    targets: [{ host: '127.0.0.1', port }],
    tokens: ['unused'],
    subscribers: [[0, 0, 0, 0]],
    connectConcurrency: 1,
    reconnectDelayMs: 10,
    server: 'nchan',
  });
  try {
    await check(
      'pool (nchan): open on the 200 head, deliveries counted, misroutes not',
      async () => {
        await pool.openAll();
        await waitFor(() => pool.progress().unique === 1, { what: 'the nchan delivery' });
        await waitFor(() => pool.result().misrouted === 1, { what: 'the misrouted frame' });
        const r = pool.result();
        assert.equal(requestLine, 'GET /sub/a HTTP/1.1');
        assert.equal(r.connected, 1);
        assert.deepEqual([...r.deliveryComment], [3]);
        assert.equal(r.failedConnects, 0);
      },
    );
  } finally {
    pool.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

const faults = (over: FakeFaults): FakeFaults => ({
  drop: (u, n) => u % 5 === 1 && n % 4 === 0,
  duplicate: (u, n) => u % 5 === 2 && n % 3 === 0,
  misroute: (u, n) => u % 5 === 4 && n % 10 === 0,
  disconnectAfter: (u, n) => u % 5 === 3 && n >= 20,
  failPost: (n) => n % 25 === 7,
  ...over,
});

async function main(): Promise<void> {
  // Stays 1 unless main() finishes: an event loop that drains early is a failure, not a pass.
  process.exitCode = 1;
  await parserTests();
  await clockTest();
  await failedConnectTest();
  await connectTimeoutTest();
  await nchanProtocolTest();
  await loadTest('in-process, chunked, LF', 0, faults({ chunked: true }));
  await loadTest(
    '2 workers, identity, CRLF, split frames',
    2,
    faults({ chunked: false, crlf: true, splitFrames: true }),
  );
  await loadTest('1 worker, no faults', 1, { chunked: true });
  const failed = results.filter((r) => !r.ok);
  console.log(`\n${results.length - failed.length}/${results.length} passed`);
  process.exitCode = failed.length ? 1 : 0;
}

void main();
