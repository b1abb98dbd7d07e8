import { createClient, type MentionEvent } from '../src/client/trackcomments-client';
import { waitFor, waitForValue } from '../harness/wait';
import {
  FakeChannel,
  FakeOrigin,
  sources,
  sourcesOf,
  type FakeEventSource,
  type FakeTab,
} from './shared-stream-fakes';

/**
 * Streams shared across tabs (src/client/shared-stream.ts), through the real client and
 * StreamSubscription, with one fake origin (./shared-stream-fakes.ts) standing in for the
 * browser. The browser test (browser-tabs.test.ts) checks the same in Chromium.
 */

const mention = (id: number): MentionEvent => ({
  type: 'mention',
  track_id: 't1',
  comment: {
    id,
    track_id: 't1',
    user: { id: 2, username: 'bob' },
    content: `@alice number ${id}`,
    timestamp: 1,
    parent_id: null,
    mentions: [{ id: 1, username: 'alice' }],
    is_edited: false,
    last_edited_at: null,
    created_at: '2026-12-05T00:00:00.000Z',
  },
  from_user: { id: 2, username: 'bob' },
});

let tabs: FakeTab[] = [];

afterEach(() => {
  for (const t of tabs) t.sub?.close();
  tabs = [];
  sources.length = 0;
});

function openTabs(origin: FakeOrigin, n: number, user = 1): FakeTab[] {
  const opened = Array.from({ length: n }, (_, i) => origin.tab(`tab${i}`).subscribe(user));
  tabs.push(...opened);
  return opened;
}

const liveSources = () => sources.filter((s) => s.readyState !== 2);

async function theOnlyStream(): Promise<FakeEventSource> {
  return waitForValue(() => (liveSources().length === 1 ? liveSources()[0] : undefined), {
    what: 'exactly one open stream',
  });
}

async function everyTabHas(list: FakeTab[], expected: string[]): Promise<void> {
  await waitFor(() => list.every((t) => t.mentions.length >= expected.length), {
    what: `${expected.length} mentions in every tab`,
  });
  for (const t of list)
    expect({ tab: t.name, mentions: t.mentions }).toEqual({
      tab: t.name,
      mentions: expected,
    });
}

describe('streams shared across tabs', () => {
  it('opens one stream for all tabs of a user and delivers each event to each tab once', async () => {
    const origin = new FakeOrigin();
    const all = openTabs(origin, 4);
    const stream = await theOnlyStream();
    expect(stream.url).toBe('http://service.test/api/me/events');
    stream.open();
    stream.send('mention', mention(5), 5);
    stream.send('mention', mention(6), 6);
    await everyTabHas(all, ['5#5', '6#6']);
    await waitFor(() => all.every((t) => t.sub?.state === 'live'), { what: 'all tabs live' });
    for (const t of all) expect(t.connected).toEqual([`c-${stream.url}`]);
    // Still one connection once everything settled.
    expect(sources).toHaveLength(1);
  });

  it('hands a late tab the live state, the greeting and the last id', async () => {
    const origin = new FakeOrigin();
    const [first] = openTabs(origin, 1) as [FakeTab];
    const stream = await theOnlyStream();
    stream.open();
    stream.send('mention', mention(7), 7);
    await waitFor(() => first.mentions.length === 1, { what: 'the first mention' });
    const [late] = openTabs(origin, 1) as [FakeTab];
    await waitFor(() => late.sub?.state === 'live', { what: 'the late tab live' });
    expect(late.connected).toEqual([`c-${stream.url}`]);
    expect(late.sub?.lastEventId).toBe('7');
    expect(late.mentions).toEqual([]);
    stream.send('mention', mention(8), 8);
    await everyTabHas([late], ['8#8']);
    expect(first.mentions).toEqual(['7#7', '8#8']);
  });

  it('resumes after the last id when the leader tab closes, losing and repeating nothing', async () => {
    const origin = new FakeOrigin();
    const all = openTabs(origin, 3);
    const first = await theOnlyStream();
    const leader = first.tab;
    first.open();
    first.send('mention', mention(10), 10);
    first.send('mention', mention(11), 11);
    await everyTabHas(all, ['10#10', '11#11']);

    leader.kill();
    const rest = all.filter((t) => t !== leader);
    const second = await theOnlyStream();
    expect(rest).toContain(second.tab);
    expect(second.lastEventIdParam).toBe('11');
    // The server replays after 11: 12 was committed while no tab held the stream. A repeat
    // of 11 (an overlap) must not reach anyone twice.
    second.open();
    second.send('mention', mention(11), 11);
    second.send('mention', mention(12), 12);
    second.send('mention', mention(13), 13);
    await everyTabHas(rest, ['10#10', '11#11', '12#12', '13#13']);
    // Each remaining tab was greeted by both streams, like an ordinary reconnect.
    for (const t of rest) expect(t.connected).toHaveLength(2);
    expect(leader.mentions).toEqual(['10#10', '11#11']);
  });

  it('drops a repeated id arriving on the channel (a late message of a former leader)', async () => {
    const origin = new FakeOrigin();
    const all = openTabs(origin, 2);
    const stream = await theOnlyStream();
    stream.open();
    stream.send('mention', mention(15), 15);
    await everyTabHas(all, ['15#15']);
    const follower = all.find((t) => t !== stream.tab)!;
    const stale = new FakeChannel(origin, [...origin.channels][0]!.name, origin.tab('gone'));
    stale.postMessage({ kind: 'event', name: 'mention', data: mention(15), id: '15' });
    stale.close();
    stream.send('mention', mention(16), 16);
    await everyTabHas(all, ['15#15', '16#16']);
    expect(follower.mentions).toEqual(['15#15', '16#16']);
  });

  it('passes the lead on when the leader closes its subscription, without closing the others', async () => {
    const origin = new FakeOrigin();
    const all = openTabs(origin, 2);
    const first = await theOnlyStream();
    first.open();
    first.send('mention', mention(20), 20);
    await everyTabHas(all, ['20#20']);
    const leader = first.tab;
    const other = all.find((t) => t !== leader)!;
    leader.sub?.close();
    expect(first.readyState).toBe(2);
    const second = await theOnlyStream();
    expect(second.tab).toBe(other);
    expect(second.lastEventIdParam).toBe('20');
    second.open();
    expect(other.states).not.toContain('closed');
    expect(leader.states[leader.states.length - 1]).toBe('closed');
  });

  it('does not share between users, nor when sharing is off', async () => {
    const origin = new FakeOrigin();
    const alices = openTabs(origin, 2, 1);
    const [bobs] = openTabs(origin, 1, 2) as [FakeTab];
    await waitFor(() => sources.length === 2, { what: 'one stream per user' });
    const bobStream = sources.find((s) => s.tab === bobs)!;
    const aliceStream = sources.find((s) => s !== bobStream)!;
    expect(alices).toContain(aliceStream.tab);
    for (const name of new Set([...origin.channels].map((c) => c.name)))
      expect(origin.holders(name)).toHaveLength(1);
    aliceStream.open();
    bobStream.open();
    aliceStream.send('mention', mention(30), 30);
    bobStream.send('mention', mention(31), 31);
    await everyTabHas(alices, ['30#30']);
    await everyTabHas([bobs], ['31#31']);

    const off = [origin.tab('solo1').subscribe(1, 'off'), origin.tab('solo2').subscribe(1, 'off')];
    tabs.push(...off);
    expect(sources.filter((s) => off.some((t) => t === s.tab))).toHaveLength(2);
  });

  it('shares a track stream between the tabs on that track only', async () => {
    const origin = new FakeOrigin();
    const onA = [1, 2].map((i) => origin.tab(`a${i}`).subscribe(1, 'shared', 'track-a'));
    const onB = origin.tab('b').subscribe(1, 'shared', 'track-b');
    tabs.push(...onA, onB);
    await waitFor(() => sources.length === 2, { what: 'one stream per track' });
    const streamA = sources.find((s) => s.url.endsWith('/api/tracks/track-a/events'))!;
    const streamB = sources.find((s) => s.url.endsWith('/api/tracks/track-b/events'))!;
    expect(streamB.tab).toBe(onB);
    streamA.open();
    streamB.open();
    const comment = (id: number) => ({ type: 'new_comment', track_id: 't', comment: { id } });
    streamA.send('new_comment', comment(40), 40);
    streamB.send('new_comment', comment(41), 41);
    await everyTabHas(onA, ['40#40']);
    await everyTabHas([onB], ['41#41']);
    expect(sources).toHaveLength(2);
  });

  it('a tab closed while waiting for the lead never opens a stream', async () => {
    const origin = new FakeOrigin();
    const [, waiting, last] = openTabs(origin, 3) as [FakeTab, FakeTab, FakeTab];
    const first = await theOnlyStream();
    waiting.sub?.close();
    first.tab.kill();
    const second = await theOnlyStream();
    expect(second.tab).toBe(last);
    expect(sources.some((s) => s.tab === waiting)).toBe(false);
  });

  it('falls back to an own stream where Web Locks are missing (Node)', () => {
    const client = createClient({
      baseUrl: 'http://service.test',
      EventSource: sourcesOf(new FakeOrigin().tab('node')),
    });
    const a = client.subscribeMe({}, { sharedAs: 1 });
    const b = client.subscribeMe({}, { sharedAs: 1 });
    a.close();
    b.close();
    expect(sources).toHaveLength(2);
  });
});
