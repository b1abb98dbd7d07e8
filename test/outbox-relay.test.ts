import pino from 'pino';
import { OutboxRelay } from '../src/outbox/relay';
import { Metrics } from '../src/metrics/metrics';
import { FakeBus, FakeEventLog } from './support/fakes';
import { waitFor } from '../harness/wait';

const relays: OutboxRelay[] = [];
afterEach(async () => {
  while (relays.length > 0) await relays.pop()!.stop();
});

function setup(
  opts: {
    intervalMs?: number;
    graceMs?: number;
    retentionMs?: number;
    pruneIntervalMs?: number;
  } = {},
) {
  const bus = new FakeBus();
  bus.deliverPublished = false;
  const log = new FakeEventLog();
  const metrics = new Metrics();
  const relay = new OutboxRelay({
    bus,
    outbox: log,
    logger: pino({ level: 'silent' }),
    metrics,
    retentionMs: opts.retentionMs ?? 3600_000,
    intervalMs: opts.intervalMs,
    graceMs: opts.graceMs,
    pruneIntervalMs: opts.pruneIntervalMs,
  });
  relays.push(relay);
  return { bus, log, metrics, relay };
}

const published = async (metrics: Metrics, source: string) =>
  (await metrics.eventsPublished.get()).values
    .filter((v) => v.labels.source === source)
    .reduce((sum, v) => sum + v.value, 0);

describe('OutboxRelay', () => {
  test('publishCommitted publishes in order, serialised once, then marks the events published', async () => {
    const { bus, log, metrics, relay } = setup();
    const events = [
      log.append('track:a', 'new_comment', { comment: { id: 1 } }),
      log.append('track:a', 'comment_edited'),
      log.append('user:4', 'mention'),
    ];
    await relay.publishCommitted(events);
    expect(bus.published.map((m) => [m.stream, m.seq, m.type])).toEqual([
      ['track:a', 1, 'new_comment'],
      ['track:a', 2, 'comment_edited'],
      ['user:4', 1, 'mention'],
    ]);
    expect(JSON.parse(bus.published[0]!.data)).toEqual(events[0]!.data);
    await waitFor(() => events.every((e) => log.isPublished(e.stream, e.seq)), {
      what: 'the marks',
    });
    expect(await published(metrics, 'commit')).toBe(3);
  });

  test('stop() flushes marks still waiting for their batch', async () => {
    const { log, relay } = setup();
    const e = log.append('track:a', 'new_comment');
    await relay.publishCommitted([e]);
    await relay.stop();
    expect(log.isPublished('track:a', 1)).toBe(true);
  });

  test('a failing bus never throws, leaves the rest unpublished, and the relay publishes them later in order', async () => {
    const { bus, log, metrics, relay } = setup({ intervalMs: 20, graceMs: 0 });
    const events = [1, 2, 3].map(() => log.append('track:f', 'new_comment'));
    bus.succeedBeforeFailing = 1; // the first publish works, then the bus goes down
    await expect(relay.publishCommitted(events)).resolves.toBeUndefined();
    await relay.stop(); // flush the mark of the one that went out
    expect(log.isPublished('track:f', 1)).toBe(true);
    expect(log.isPublished('track:f', 2)).toBe(false);
    expect(log.isPublished('track:f', 3)).toBe(false);

    const refusedBefore = bus.failedPublishes;
    relay.start();
    await waitFor(() => bus.failedPublishes >= refusedBefore + 3, {
      what: 'several relay passes while the bus is down',
    });
    expect(bus.published.map((m) => m.seq)).toEqual([1]);
    expect(log.isPublished('track:f', 2)).toBe(false);

    bus.succeedBeforeFailing = undefined;
    bus.failing = false;
    await waitFor(() => log.isPublished('track:f', 3), { what: 'the relay to publish the rest' });
    expect(bus.published.map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(await published(metrics, 'relay')).toBe(2);
  });

  test('the relay leaves events younger than the grace period to their committer', async () => {
    const { bus, log, relay } = setup({ graceMs: 60_000 });
    log.append('track:g', 'new_comment', {}, Date.now() - 120_000);
    log.append('track:g', 'new_comment');
    await relay.relayTick();
    expect(bus.published.map((m) => m.seq)).toEqual([1]);
    expect(log.isPublished('track:g', 1)).toBe(true);
    expect(log.isPublished('track:g', 2)).toBe(false);
  });

  test('a backlog larger than one batch is drained in one pass', async () => {
    const { bus, log, relay } = setup({ graceMs: 0 });
    for (let i = 0; i < 1200; i++) log.append('track:b', 'new_comment', {}, Date.now() - 10);
    await relay.relayTick();
    expect(bus.published).toHaveLength(1200);
    expect(bus.published.map((m) => m.seq)).toEqual(Array.from({ length: 1200 }, (_, i) => i + 1));
    expect(log.isPublished('track:b', 1200)).toBe(true);
  });

  test('prunes events older than the retention on its interval', async () => {
    const { log, relay } = setup({ retentionMs: 10_000, pruneIntervalMs: 30 });
    log.append('track:p', 'new_comment', {}, Date.now() - 20_000);
    log.append('track:p', 'new_comment');
    relay.start();
    await waitFor(() => log.pruneCalls.length >= 2, { what: 'two prune passes' });
    const cutoff = log.pruneCalls[0]!.getTime();
    expect(Math.abs(cutoff - (Date.now() - 10_000))).toBeLessThan(1000);
    expect(await log.readAfter('track:p', 0, 10)).toEqual([expect.objectContaining({ seq: 2 })]);
    expect((await log.heads(['track:p'])).get('track:p')).toEqual({ lastSeq: 2, retainedFrom: 2 });
  });
});
