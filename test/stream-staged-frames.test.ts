import type { Metrics } from '../src/metrics/metrics';
import { encodeFrame } from '../src/streams/frames';
import type { StreamSession } from '../src/streams/session';
import { writeStaged, type StagedFrame } from '../src/streams/staged-frames';

/** A session reduced to what the fan-out uses: its position and write. */
function fakeSession(lastSentSeq = 0, accepts = Infinity) {
  const writes: string[] = [];
  const s = {
    lastSentSeq,
    write(data: Buffer | string) {
      if (writes.length >= accepts) return false;
      writes.push(data.toString());
      return true;
    },
  };
  return { s, writes, asSession: s as unknown as StreamSession };
}

function fakeMetrics() {
  const delivered: Record<string, number> = {};
  let lagSamples = 0;
  const metrics = {
    eventsDelivered: {
      inc: ({ type }: { type: string }, n = 1) => (delivered[type] = (delivered[type] ?? 0) + n),
    },
    deliveryLag: { observe: () => lagSamples++ },
  } as unknown as Pick<Metrics, 'eventsDelivered' | 'deliveryLag'>;
  return { metrics, delivered, lagSamples: () => lagSamples };
}

const frame = (seq: number | null, type = 'new_comment'): StagedFrame => ({
  frame: encodeFrame(seq, type, '{}'),
  seq,
  type,
  receivedAt: 0,
});

describe('writeStaged', () => {
  test('one write per session carrying every staged frame; positions move to the last id', () => {
    const a = fakeSession();
    const b = fakeSession();
    const m = fakeMetrics();
    const staged = [frame(1), frame(null, 'user_typing'), frame(2)];
    writeStaged(staged, [a.asSession, b.asSession], m.metrics);
    const all = staged.map((f) => f.frame.toString()).join('');
    expect(a.writes).toEqual([all]);
    expect(b.writes).toEqual([all]);
    expect([a.s.lastSentSeq, b.s.lastSentSeq]).toEqual([2, 2]);
    expect(m.delivered).toEqual({ new_comment: 4, user_typing: 2 });
    expect(m.lagSamples()).toBe(3);
  });

  test('a session that already has some of the ids gets only the rest', () => {
    const ahead = fakeSession(2);
    const m = fakeMetrics();
    writeStaged([frame(1), frame(2), frame(3)], [ahead.asSession], m.metrics);
    expect(ahead.writes).toEqual([frame(3).frame.toString()]);
    expect(ahead.s.lastSentSeq).toBe(3);
    expect(m.delivered).toEqual({ new_comment: 1 });
  });

  test('a refused write (slow client) moves no position and counts no delivery', () => {
    const slow = fakeSession(0, 0);
    const m = fakeMetrics();
    writeStaged([frame(1)], [slow.asSession], m.metrics);
    expect(slow.s.lastSentSeq).toBe(0);
    expect(m.delivered).toEqual({});
    expect(m.lagSamples()).toBe(1);
  });
});
