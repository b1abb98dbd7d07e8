import type { BusMessage } from '../src/events/types';
import { StreamChannel } from '../src/streams/channel';
import { frameText } from '../src/streams/frames';
import { StreamSession } from '../src/streams/session';
import { FakeBus, FakeEventLog, toBusMessage } from './support/fakes';
import { FakeSocket, asSocket, counterValue, testHost, type TestHost } from './streams-fakes';

const STREAM = 'track:t1';
/** channel.ts: how long a message ahead of a gap waits, and when a failed fill is retried. */
const GAP_WAIT_MS = 10;
const FILL_RETRY_MS = 1000;
const GREETING = frameText(null, 'connected', '{"type":"connected"}');

interface Setup {
  bus: FakeBus;
  log: FakeEventLog;
  host: TestHost;
  journal: string[];
  channel: StreamChannel;
}

const channels: StreamChannel[] = [];
afterEach(() => {
  for (const c of channels.splice(0)) c.close();
});

function setup(prepare?: (log: FakeEventLog) => void): Setup {
  const journal: string[] = [];
  const bus = new FakeBus(journal);
  const log = new FakeEventLog(journal);
  prepare?.(log);
  const host = testHost(bus, log);
  const channel = new StreamChannel(STREAM, 'track', 't1', host);
  channels.push(channel);
  return { bus, log, host, journal, channel };
}

function sessionOf(channel: StreamChannel, greeting: string | null = GREETING) {
  const socket = new FakeSocket();
  const session = new StreamSession(asSocket(socket), channel, 1);
  session.greeting = greeting;
  return { session, socket };
}

async function liveSession(channel: StreamChannel) {
  const s = sessionOf(channel);
  await channel.join(s.session);
  return s;
}

/** Resolves once every job queued before it has run and what they staged is written. */
const settled = (channel: StreamChannel) => channel.fill(0);

const ephemeral: BusMessage = {
  stream: STREAM,
  seq: null,
  type: 'user_typing',
  data: JSON.stringify({ type: 'user_typing', track_id: 't1' }),
};

describe('StreamChannel', () => {
  test('init subscribes on the bus before it reads the head', async () => {
    const { channel, journal } = setup((log) => log.append(STREAM, 'new_comment'));
    await settled(channel);
    expect(journal).toEqual([`subscribe:${STREAM}`, `heads:${STREAM}`]);
    expect(channel.lastSeq).toBe(1);
  });

  test('delivers in-order messages together in one write, drops duplicates, sends ephemeral ones without id', async () => {
    const { channel, log } = setup();
    const { socket } = await liveSession(channel);
    const [e1, e2] = [log.append(STREAM, 'new_comment'), log.append(STREAM, 'new_comment')];
    channel.receive(toBusMessage(e1));
    channel.receive(toBusMessage(e2));
    await settled(channel);
    expect(socket.written).toHaveLength(2); // the greeting, then both events in one write
    expect(socket.ids()).toEqual([1, 2]);
    channel.receive(toBusMessage(e1));
    channel.receive(ephemeral);
    await settled(channel);
    expect(socket.ids()).toEqual([1, 2]);
    expect(socket.events()).toEqual(['connected', 'new_comment', 'new_comment', 'user_typing']);
  });

  test('a message ahead of a gap waits for the missing ones on the bus, then goes out in seq order', async () => {
    const { channel, log, journal, host } = setup();
    const { socket } = await liveSession(channel);
    const events = [1, 2, 3].map(() => log.append(STREAM, 'new_comment'));
    channel.receive(toBusMessage(events[2]!));
    channel.receive(toBusMessage(events[1]!));
    channel.receive(toBusMessage(events[0]!));
    await settled(channel);
    expect(socket.ids()).toEqual([1, 2, 3]);
    expect(journal.filter((j) => j.startsWith('readAfter'))).toEqual([]);
    expect(await counterValue(host.metrics.gapFills)).toBe(0);
  });

  test('what the bus does not bring is read from the log before the message after it', async () => {
    const { channel, log, journal, host } = setup();
    const { socket } = await liveSession(channel);
    const events = [1, 2, 3].map(() => log.append(STREAM, 'new_comment'));
    channel.receive(toBusMessage(events[2]!));
    await settled(channel);
    expect(socket.ids()).toEqual([1, 2, 3]);
    expect(journal).toContain(`readAfter:${STREAM}:0`);
    expect(await counterValue(host.metrics.gapFills)).toBe(1);
  });

  test('a fill the log cannot answer is retried, not skipped', async () => {
    // Fake timers for the gap wait and the retry only: head reads and flushes run as usual.
    jest.useFakeTimers({
      doNotFake: ['setImmediate', 'queueMicrotask', 'nextTick', 'performance'],
    });
    try {
      const { channel, log } = setup();
      const { socket } = await liveSession(channel);
      log.append(STREAM, 'new_comment');
      const e2 = log.append(STREAM, 'new_comment');
      log.failReads = true;
      channel.receive(toBusMessage(e2));
      await jest.advanceTimersByTimeAsync(GAP_WAIT_MS);
      await settled(channel);
      expect(socket.ids()).toEqual([]);
      expect(log.failedReads).toBeGreaterThan(0);
      log.failReads = false;
      await jest.advanceTimersByTimeAsync(FILL_RETRY_MS);
      await settled(channel);
      expect(socket.ids()).toEqual([1, 2]);
    } finally {
      jest.useRealTimers();
    }
  });

  test('a joining session gets its greeting, then only what is staged after it joined', async () => {
    const { channel, log } = setup();
    const a = await liveSession(channel);
    channel.receive(toBusMessage(log.append(STREAM, 'new_comment'))); // staged, not yet flushed
    const b = sessionOf(channel);
    await channel.join(b.session);
    channel.receive(toBusMessage(log.append(STREAM, 'new_comment')));
    await settled(channel);
    expect(a.socket.ids()).toEqual([1, 2]);
    expect(b.socket.ids()).toEqual([2]);
    expect(b.socket.events()).toEqual(['connected', 'new_comment']);
    expect(channel.live.has(b.session)).toBe(true);
  });

  test('a resumed session gets the log tail after its position before live events', async () => {
    const { channel, log } = setup((l) => [1, 2, 3].forEach(() => l.append(STREAM, 'new_comment')));
    const { session, socket } = sessionOf(channel, null);
    session.resumed = true;
    session.lastSentSeq = 1; // what its replay sent
    await channel.join(session);
    channel.receive(toBusMessage(log.append(STREAM, 'comment_deleted')));
    await settled(channel);
    expect(socket.ids()).toEqual([2, 3, 4]);
  });

  test('a replay that went past what arrived here brings every live session forward', async () => {
    const { channel, log } = setup();
    const a = await liveSession(channel);
    log.append(STREAM, 'new_comment');
    log.append(STREAM, 'new_comment'); // committed, not (yet) on the bus
    const b = sessionOf(channel, null);
    b.session.resumed = true;
    b.session.lastSentSeq = 2;
    await channel.join(b.session);
    expect(channel.lastSeq).toBe(2);
    expect(a.socket.ids()).toEqual([1, 2]);
    expect(b.socket.ids()).toEqual([]);
    channel.receive(toBusMessage(log.append(STREAM, 'new_comment')));
    await settled(channel);
    expect(a.socket.ids()).toEqual([1, 2, 3]);
    expect(b.socket.ids()).toEqual([3]);
  });

  test('a stream whose head cannot be read fails: the host is told and joins resolve without joining', async () => {
    const { channel, host } = setup((log) => (log.failReads = true));
    const { session, socket } = sessionOf(channel);
    await channel.join(session);
    expect(host.failedChannels).toEqual([channel]);
    expect(channel.live.size).toBe(0);
    expect(socket.written).toEqual([]);
  });

  test('once closed, queued work resolves and messages are ignored', async () => {
    const { channel, log } = setup();
    const { socket } = await liveSession(channel);
    expect(channel.close()).toBe(true);
    expect(channel.close()).toBe(false);
    channel.receive(toBusMessage(log.append(STREAM, 'new_comment')));
    await settled(channel);
    expect(socket.ids()).toEqual([]);
    expect(channel.isClosed).toBe(true);
  });
});
