import { StreamChannel } from '../src/streams/channel';
import { parseLastEventId, resetReason } from '../src/streams/replay';
import { StreamSession } from '../src/streams/session';
import { FakeBus, FakeEventLog } from './support/fakes';
import { FakeSocket, asSocket, counterValue, testHost } from './streams-fakes';

const STREAM = 'track:t1';

describe('parseLastEventId', () => {
  test.each([
    ['42', 42],
    ['0', 0],
    ['999999999999999', 999999999999999],
  ])('%s is a seq', (raw, seq) => expect(parseLastEventId(raw)).toBe(seq));

  test.each(['', 'abc', '-1', '1e3', '4.2', ' 42', '0x10', '1000000000000000'])(
    '%j is not',
    (raw) => expect(parseLastEventId(raw)).toBeNull(),
  );
});

describe('resetReason', () => {
  const head = { lastSeq: 10, retainedFrom: 5 };
  test('an id within (retainedFrom - 2, lastSeq] resumes', () => {
    expect(resetReason(4, head)).toBeNull();
    expect(resetReason(10, head)).toBeNull();
  });
  test('an id before what is retained, after the head, or not a seq does not', () => {
    expect(resetReason(3, head)).toBe('history_expired');
    expect(resetReason(11, head)).toBe('unknown_last_event_id');
    expect(resetReason(null, head)).toBe('invalid_last_event_id');
  });
});

describe('Replay', () => {
  const channels: StreamChannel[] = [];
  afterEach(() => {
    for (const c of channels.splice(0)) c.close();
  });

  function setup(events: number, opts: { maxBufferBytes?: number; pad?: number } = {}) {
    const bus = new FakeBus();
    const log = new FakeEventLog();
    for (let i = 0; i < events; i++) {
      log.append(STREAM, 'new_comment', {
        comment: { id: i, content: 'x'.repeat(opts.pad ?? 0) },
      } as never);
    }
    const host = testHost(bus, log, opts);
    const channel = new StreamChannel(STREAM, 'track', 't1', host);
    channels.push(channel);
    const socket = new FakeSocket();
    const session = new StreamSession(asSocket(socket), channel, 1);
    return { log, host, channel, socket, session };
  }

  test('sends the stored events after the id, up to the head, and marks the session resumed', async () => {
    const { host, socket, session } = setup(5);
    await host.replay.resume(session, '2');
    expect(socket.ids()).toEqual([3, 4, 5]);
    expect(session.lastSentSeq).toBe(5);
    expect(session.resumed).toBe(true);
    expect(session.greeting).toBeNull();
    expect(await counterValue(host.metrics.replays)).toBe(1);
  });

  test('cuts a long replay into writes bounded in bytes', async () => {
    const { host, socket, session } = setup(20, { maxBufferBytes: 4096, pad: 500 });
    await host.replay.resume(session, '0');
    expect(socket.ids()).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(socket.written.length).toBeGreaterThan(1);
    for (const w of socket.written) expect(Buffer.byteLength(w)).toBeLessThanOrEqual(2048);
  });

  test.each([
    ['abc', 'invalid_last_event_id'],
    ['99', 'unknown_last_event_id'],
  ])(
    'Last-Event-ID %s: nothing is replayed, `reset` (%s) waits as the greeting',
    async (raw, reason) => {
      const { host, socket, session } = setup(3);
      await host.replay.resume(session, raw);
      expect(socket.written).toEqual([]);
      expect(session.resumed).toBe(false);
      expect(session.greeting).toContain('event: reset');
      expect(JSON.parse(/^data: (.*)$/m.exec(session.greeting!)![1]!)).toEqual({
        type: 'reset',
        track_id: 't1',
        reason,
      });
      expect(await counterValue(host.metrics.resets)).toBe(1);
    },
  );

  test('an id older than what the log retains gets `reset` (history_expired)', async () => {
    const { host, log, session } = setup(3);
    await log.pruneBefore(new Date(Date.now() + 1000)); // everything pruned: retainedFrom = 4
    await host.replay.resume(session, '1');
    expect(session.greeting).toContain('"reason":"history_expired"');
  });

  test('a session that ends while the head is read gets nothing', async () => {
    const { host, socket, session } = setup(3);
    const resumed = host.replay.resume(session, '0');
    session.end();
    await resumed;
    expect(socket.written).toEqual([]);
    expect(session.resumed).toBe(false);
  });
});
