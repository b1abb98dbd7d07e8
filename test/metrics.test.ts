import { useCluster, waitReady, type MetricSamples } from './support/cluster';
import { waitFor } from '../harness/wait';
import { SseClient } from './support/sse-client';

/**
 * /metrics of a real replica (PostgreSQL + private Redis) after real traffic:
 * each metric is read back as a number and must have counted exactly what
 * the test did.
 */

const TYPING_LIMIT = 2;

const c = useCluster({
  replicas: 1,
  nginx: false,
  env: { TYPING_LIMIT: String(TYPING_LIMIT), TYPING_WINDOW_MS: '60000' },
});

const COMMENTS_ROUTE = '/api/tracks/:trackId/comments';

function delta(after: MetricSamples, before: MetricSamples) {
  return (name: string, labels: Record<string, string> = {}) =>
    after.value(name, labels) - before.value(name, labels);
}

test('/metrics counts streams, publishes, deliveries, latency, replays, resets, 429s, bus reconnects and request durations', async () => {
  const replica = c().replicas[0]!;
  const trackId = await c().newTrack();
  const streams: SseClient[] = [];
  const open = async (path: string, user: 'alice' | 'bob' | 'creator', lastEventId?: string) => {
    const s = await SseClient.open(`${replica.url}${path}`, {
      token: c().tokens[user],
      lastEventId,
    });
    streams.push(s);
    expect(s.status).toBe(200);
    return s;
  };
  try {
    const m0 = await c().metrics(0);
    // Exposed from the start, so dashboards and alerts see zeros rather than gaps.
    expect(m0.value('trackcomments_open_streams', { kind: 'track' })).toBe(0);
    expect(m0.value('trackcomments_open_streams', { kind: 'user' })).toBe(0);
    expect(m0.has('trackcomments_slow_subscriber_disconnects_total')).toBe(true);
    expect(m0.has('trackcomments_replays_total')).toBe(true);

    // Open streams by kind.
    const trackStreams = [
      await open(`/api/tracks/${trackId}/events`, 'alice'),
      await open(`/api/tracks/${trackId}/events`, 'bob'),
    ];
    const personal = await open('/api/me/events', 'creator');
    for (const s of streams) await s.waitForEvent((e) => e.event === 'connected', 20000);
    const m1 = await c().metrics(0);
    expect(m1.value('trackcomments_open_streams', { kind: 'track' })).toBe(2);
    expect(m1.value('trackcomments_open_streams', { kind: 'user' })).toBe(1);

    // Three comments: each a new_comment on the track and a mention to the album's creator.
    for (let i = 0; i < 3; i++) {
      await c().postComment(replica.url, 'alice', trackId, `metric comment ${i}`);
    }
    for (const s of trackStreams) {
      await s.waitForEvents((e) => e.event === 'new_comment', 3, 20000);
    }
    await personal.waitForEvents((e) => e.event === 'mention', 3, 20000);
    const m2 = await c().metrics(0);
    const d2 = delta(m2, m1);
    expect(
      d2('trackcomments_events_published_total', { type: 'new_comment', source: 'commit' }),
    ).toBe(3);
    expect(d2('trackcomments_events_published_total', { type: 'mention', source: 'commit' })).toBe(
      3,
    );
    expect(d2('trackcomments_events_delivered_total', { type: 'new_comment' })).toBe(6);
    expect(d2('trackcomments_events_delivered_total', { type: 'mention' })).toBe(3);
    // One latency observation per event reaching each stream here (3 on the track, 3 personal).
    const lagCount = d2('trackcomments_publish_to_delivery_seconds_count');
    expect(lagCount).toBeGreaterThanOrEqual(6);
    expect(d2('trackcomments_publish_to_delivery_seconds_bucket', { le: '+Inf' })).toBe(lagCount);
    expect(m2.value('trackcomments_publish_to_delivery_seconds_sum')).toBeGreaterThan(0);
    // Buckets are cumulative.
    const buckets = m2
      .find('trackcomments_publish_to_delivery_seconds_bucket')
      .map((s) => ({ le: Number(s.labels.le === '+Inf' ? Infinity : s.labels.le), v: s.value }))
      .sort((x, y) => x.le - y.le);
    for (let i = 1; i < buckets.length; i++)
      expect(buckets[i]!.v).toBeGreaterThanOrEqual(buckets[i - 1]!.v);
    // Request durations by route pattern (not by raw path, which would explode the label set).
    const posts = { method: 'POST', route: COMMENTS_ROUTE, status: '201' };
    expect(d2('trackcomments_http_request_duration_seconds_count', posts)).toBe(3);
    expect(d2('trackcomments_http_request_duration_seconds_bucket', { ...posts, le: '+Inf' })).toBe(
      3,
    );
    expect(m2.value('trackcomments_http_request_duration_seconds_sum', posts)).toBeGreaterThan(0);
    expect(
      m2.samples.some(
        (s) =>
          s.name.startsWith('trackcomments_http_request_duration') &&
          s.labels.route?.includes(trackId),
      ),
    ).toBe(false);

    // Typing: TYPING_LIMIT accepted, then 429.
    const typing = [];
    for (let i = 0; i < TYPING_LIMIT + 1; i++) {
      typing.push(
        (
          await c().request(replica.url, 'POST', `/api/tracks/${trackId}/typing`, {
            user: 'bob',
            body: { is_typing: true },
          })
        ).status,
      );
    }
    expect(typing).toEqual([...Array<number>(TYPING_LIMIT).fill(202), 429]);
    const m3 = await c().metrics(0);
    expect(delta(m3, m2)('trackcomments_rate_limited_total', { limiter: 'typing' })).toBe(1);

    // A resume from event 1 replays 2 and 3; an id beyond the log gets a reset.
    const ids = trackStreams[0]!.storedEvents().map((e) => Number(e.id));
    expect(ids).toHaveLength(3);
    const resumed = await open(`/api/tracks/${trackId}/events`, 'alice', String(ids[0]));
    await resumed.waitForEvents((e) => e.event === 'new_comment', 2, 20000);
    const reset = await open(`/api/tracks/${trackId}/events`, 'bob', String(ids[2]! + 1000));
    await reset.waitForEvent((e) => e.event === 'reset', 20000);
    const m4 = await c().metrics(0);
    const d4 = delta(m4, m3);
    expect(d4('trackcomments_replays_total')).toBe(1);
    expect(d4('trackcomments_resets_total')).toBe(1);
    expect(m4.value('trackcomments_open_streams', { kind: 'track' })).toBe(4);

    // Closing every stream brings the gauges back to zero.
    for (const s of streams) s.close();
    await waitFor(
      async () => {
        const m = await c().metrics(0);
        return (
          m.value('trackcomments_open_streams', { kind: 'track' }) === 0 &&
          m.value('trackcomments_open_streams', { kind: 'user' }) === 0
        );
      },
      { timeoutMs: 20000, intervalMs: 100, what: 'open_streams back to 0' },
    );

    // Bus reconnect: the private Redis goes away and comes back.
    const m5 = await c().metrics(0);
    expect(m5.value('trackcomments_bus_reconnects_total')).toBe(0);
    const listener = await open(`/api/tracks/${trackId}/events`, 'alice');
    await listener.waitForEvent((e) => e.event === 'connected', 20000);
    await c().redis.stop();
    await c().redis.start();
    await waitFor(
      async () => (await c().metrics(0)).value('trackcomments_bus_reconnects_total') === 1,
      { timeoutMs: 30000, intervalMs: 100, what: 'bus_reconnects_total = 1' },
    );
    await waitReady(replica.url, 30000);
    // The stream opened before the outage still gets events published after it.
    const after = await c().postComment(replica.url, 'alice', trackId, 'after the outage');
    await listener.waitForEvent(
      (e) => e.event === 'new_comment' && e.data.comment?.id === after.id,
      20000,
    );
  } finally {
    for (const s of streams) s.close();
  }
}, 180000);
