/**
 * ExpiryWheel (src/streams/expiry-wheel.ts): one timer for every stream's token expiry.
 * An entry fires once, never before its deadline and at most about two seconds after it;
 * a removed entry never fires; one interval timer runs while anything is scheduled.
 */
import fc from 'fast-check';
import { ExpiryWheel, type WheelLinks } from '../src/streams/expiry-wheel';

class Entry implements WheelLinks<Entry> {
  wheelNext: Entry | null = null;
  wheelPrev: Entry | null = null;
  wheelDue = -1;
  constructor(readonly name: string) {}
}

const START = Date.UTC(2030, 0, 1, 12, 0, 0, 250);

beforeEach(() => {
  jest.useFakeTimers({ now: START });
});
afterEach(() => {
  jest.useRealTimers();
});

function wheel(slots?: number) {
  const fired: { entry: Entry; at: number }[] = [];
  const w = new ExpiryWheel<Entry>((entry) => fired.push({ entry, at: Date.now() }), slots);
  return { w, fired };
}

test('fires an entry at the first tick at or after its deadline, once', () => {
  const { w, fired } = wheel();
  const a = new Entry('a');
  w.add(a, START + 3_000);
  jest.advanceTimersByTime(2_000);
  expect(fired).toEqual([]);
  jest.advanceTimersByTime(2_000);
  expect(fired.map((f) => f.entry.name)).toEqual(['a']);
  expect(fired[0]!.at).toBeGreaterThanOrEqual(START + 3_000);
  expect(fired[0]!.at).toBeLessThanOrEqual(START + 3_000 + 2_000);
  jest.advanceTimersByTime(10_000);
  expect(fired).toHaveLength(1);
  expect(w.size).toBe(0);
});

test('a removed entry never fires; removing twice or an unscheduled entry is harmless', () => {
  const { w, fired } = wheel();
  const a = new Entry('a');
  const b = new Entry('b');
  w.add(a, START + 1_500);
  w.add(b, START + 1_500);
  w.remove(a);
  w.remove(a);
  w.remove(new Entry('never added'));
  jest.advanceTimersByTime(5_000);
  expect(fired.map((f) => f.entry.name)).toEqual(['b']);
});

test('a deadline already past fires on the next tick', () => {
  const { w, fired } = wheel();
  w.add(new Entry('late'), START - 60_000);
  jest.advanceTimersByTime(1_000);
  expect(fired.map((f) => f.entry.name)).toEqual(['late']);
});

test('deadlines many rounds ahead fire on time, not when their slot first comes round', () => {
  const { w, fired } = wheel(8);
  w.add(new Entry('far'), START + 30_000);
  w.add(new Entry('near'), START + 2_000);
  jest.advanceTimersByTime(29_000);
  expect(fired.map((f) => f.entry.name)).toEqual(['near']);
  jest.advanceTimersByTime(2_000);
  expect(fired.map((f) => f.entry.name)).toEqual(['near', 'far']);
});

test('re-adding moves the deadline', () => {
  const { w, fired } = wheel();
  const a = new Entry('a');
  w.add(a, START + 2_000);
  w.add(a, START + 10_000);
  expect(w.size).toBe(1);
  jest.advanceTimersByTime(5_000);
  expect(fired).toEqual([]);
  jest.advanceTimersByTime(7_000);
  expect(fired).toHaveLength(1);
});

test('one timer while anything is scheduled, none when empty or closed', () => {
  const { w, fired } = wheel();
  expect(jest.getTimerCount()).toBe(0);
  const entries = Array.from({ length: 1000 }, (_, i) => new Entry(String(i)));
  entries.forEach((e, i) => w.add(e, START + 1_000 + i * 10));
  expect(jest.getTimerCount()).toBe(1);
  for (const e of entries) w.remove(e);
  expect(jest.getTimerCount()).toBe(0);
  w.add(entries[0]!, START + 5_000);
  w.close();
  expect(jest.getTimerCount()).toBe(0);
  jest.advanceTimersByTime(10_000);
  expect(fired).toEqual([]);
  expect(entries[0]!.wheelDue).toBe(-1);
});

test('a callback may schedule and remove entries, also ones due in the same tick', () => {
  const later = new Entry('later');
  const a = new Entry('a');
  const b = new Entry('b');
  const fired: string[] = [];
  const w: ExpiryWheel<Entry> = new ExpiryWheel<Entry>((e) => {
    fired.push(e.name);
    // Whichever of a and b fires first takes the other out, and schedules `later`.
    w.remove(e === a ? b : a);
    if (e !== later) w.add(later, Date.now() + 1_000);
  });
  w.add(a, START + 1_000);
  w.add(b, START + 1_000);
  jest.advanceTimersByTime(2_000);
  expect(fired).toHaveLength(1);
  expect(['a', 'b']).toContain(fired[0]);
  jest.advanceTimersByTime(3_000);
  expect(fired.slice(1)).toEqual(['later']);
  expect(w.size).toBe(0);
});

test('property: every scheduled entry fires once, on time; removed ones never', () => {
  const op = fc.oneof(
    fc.record({
      kind: fc.constant('add' as const),
      entry: fc.nat(20),
      inMs: fc.integer({ min: -5_000, max: 400_000 }),
    }),
    fc.record({ kind: fc.constant('remove' as const), entry: fc.nat(20) }),
    fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 200_000 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), fc.integer({ min: 1, max: 64 }), (ops, slots) => {
      jest.setSystemTime(START);
      jest.clearAllTimers();
      const entries = Array.from({ length: 21 }, (_, i) => new Entry(String(i)));
      const deadline = new Map<Entry, number>();
      const { w, fired } = wheel(slots);
      const check = () => {
        for (const { entry, at } of fired.splice(0)) {
          const due = deadline.get(entry);
          expect(due).toBeDefined();
          expect(at).toBeGreaterThanOrEqual(due!);
          expect(at).toBeLessThanOrEqual(Math.max(due!, START) + 2_000);
          deadline.delete(entry);
        }
        for (const due of deadline.values()) expect(Date.now()).toBeLessThan(due + 2_000);
      };
      for (const o of ops) {
        if (o.kind === 'add') {
          const at = Date.now() + o.inMs;
          w.add(entries[o.entry]!, at);
          // A past deadline counts from now: it fires on the next tick.
          deadline.set(entries[o.entry]!, Math.max(at, Date.now()));
        } else if (o.kind === 'remove') {
          w.remove(entries[o.entry]!);
          deadline.delete(entries[o.entry]!);
        } else {
          // Step a second at a time, as the clock and the interval move together.
          for (let left = o.ms; left > 0; left -= 1_000) {
            jest.advanceTimersByTime(Math.min(1_000, left));
            check();
          }
        }
        expect(w.size).toBe(deadline.size);
      }
      w.close();
    }),
    { numRuns: 200 },
  );
});
