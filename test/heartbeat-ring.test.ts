import { HeartbeatRing, type RingSlot } from '../src/streams/heartbeat-ring';

interface Entry extends RingSlot {
  name: number;
}

const entry = (name: number): Entry => ({ name, heartbeatSlot: -1 });

/** A ring on jest's fake clock, recording when each entry was beaten. */
function ringOf(intervalMs: number, onBeat?: (e: Entry) => void) {
  const beats = new Map<number, number[]>();
  const ring = new HeartbeatRing<Entry>(
    (e) => {
      const at = Date.now();
      beats.set(e.name, [...(beats.get(e.name) ?? []), at]);
      onBeat?.(e);
    },
    { intervalMs, now: () => Date.now() },
  );
  return { ring, beats };
}

/** Advances the fake clock in steps, counting beats per timer callback. */
function run(ms: number, stepMs: number, beats: Map<number, number[]>): number[] {
  const perStep: number[] = [];
  const total = () => [...beats.values()].reduce((a, b) => a + b.length, 0);
  for (let t = 0; t < ms; t += stepMs) {
    const before = total();
    jest.advanceTimersByTime(stepMs);
    perStep.push(total() - before);
  }
  return perStep;
}

beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
afterEach(() => jest.useRealTimers());

describe('HeartbeatRing', () => {
  test('spreads the beats of many entries over the interval, never more than a group at once', () => {
    const { ring, beats } = ringOf(15_000);
    const n = 5000;
    for (let i = 0; i < n; i++) ring.add(entry(i));
    const start = Date.now();
    // Step 1 ms, so every timer callback is its own step.
    const perStep = run(30_000, 1, beats);
    // 150 groups of 100 ms: ~34 beats per tick, instead of 5,000 in one burst.
    expect(Math.max(...perStep)).toBeLessThanOrEqual(Math.ceil(n / 150));
    expect(perStep.filter((c) => c > 0).length).toBeGreaterThanOrEqual(2 * 150 - 1);
    for (let i = 0; i < n; i++) {
      const at = beats.get(i)!;
      expect(at.length).toBeGreaterThanOrEqual(2);
      // The first within one interval of being added, then at most one interval apart.
      expect(at[0]! - start).toBeLessThanOrEqual(15_000);
      for (let k = 1; k < at.length; k++) expect(at[k]! - at[k - 1]!).toBeLessThanOrEqual(15_000);
    }
  });

  test('late timers do not add up: every entry keeps within the interval when each tick is late', () => {
    const { ring, beats } = ringOf(1000);
    for (let i = 0; i < 50; i++) ring.add(entry(i));
    // The clock jumps 37 ms at a time, so every timer fires up to 36 ms after it was due.
    run(20_000, 37, beats);
    for (let i = 0; i < 50; i++) {
      const at = beats.get(i)!;
      expect(at.length).toBeGreaterThanOrEqual(19);
      for (let k = 1; k < at.length; k++)
        expect(at[k]! - at[k - 1]!).toBeLessThanOrEqual(1000 + 37);
    }
  });

  test('after a stall longer than a round, each entry is beaten once, not once per missed round', () => {
    const { ring, beats } = ringOf(1000);
    for (let i = 0; i < 20; i++) ring.add(entry(i));
    // The event loop was held for 5 s: the clock moved on, the first tick comes only now.
    jest.setSystemTime(Date.now() + 5000);
    jest.advanceTimersByTime(100);
    for (let i = 0; i < 20; i++) expect(beats.get(i)).toHaveLength(1);
    run(1000, 10, beats);
    for (let i = 0; i < 20; i++) expect(beats.get(i)).toHaveLength(2);
  });

  test('entries join and leave at any time, also during a beat; the timer runs only while it holds any', () => {
    const { ring, beats } = ringOf(1000, (e) => {
      if (e.name % 2 === 0) ring.delete(e); // a slow client dropped by its ping
    });
    const entries = Array.from({ length: 40 }, (_, i) => entry(i));
    for (const e of entries) ring.add(e);
    ring.add(entries[0]!); // a second add is a no-op
    expect(ring.size).toBe(40);
    expect(jest.getTimerCount()).toBe(1);
    run(1000, 10, beats);
    expect(ring.size).toBe(20);
    expect([...ring].map((e) => e.name).sort((a, b) => a - b)).toEqual(
      entries.filter((e) => e.name % 2 === 1).map((e) => e.name),
    );
    expect(ring.has(entries[0]!)).toBe(false);
    expect(ring.delete(entries[0]!)).toBe(false);
    for (const e of entries) ring.delete(e);
    expect(ring.size).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    const late = entry(99);
    ring.add(late);
    run(1000, 10, beats);
    expect(beats.get(99)).toHaveLength(1);
    ring.close();
    expect(jest.getTimerCount()).toBe(0);
  });

  test('a short interval is one group beaten every interval', () => {
    const { ring, beats } = ringOf(40);
    ring.add(entry(1));
    run(400, 1, beats);
    const at = beats.get(1)!;
    expect(at.length).toBeGreaterThanOrEqual(9);
    for (let k = 1; k < at.length; k++) expect(at[k]! - at[k - 1]!).toBe(40);
  });
});
