import type {
  Comment,
  CommentDeletedEvent,
  CommentEditedEvent,
  NewCommentEvent,
  ResetEvent,
} from '../src/events/catalogue';
import {
  openLiveList,
  type LiveList,
  type LiveListClient,
  type LiveListHandlers,
} from '../src/client/live-list';
import type {
  ConnectionState,
  StreamHandlers,
  SubscribeOptions,
} from '../src/client/trackcomments-client';

/** The live list against a fake client: snapshot loads resolve when the test says so. */

const TRACK = 't1';

const comment = (id: number, extra: Partial<Comment> = {}): Comment => ({
  id,
  track_id: TRACK,
  user: { id: 1, username: 'alice' },
  content: `comment ${id}`,
  timestamp: id,
  parent_id: null,
  mentions: [],
  is_edited: false,
  last_edited_at: null,
  created_at: '2026-11-26T08:00:00.000Z',
  ...extra,
});

const created = (c: Comment): NewCommentEvent => ({
  type: 'new_comment',
  track_id: c.track_id,
  comment: c,
});
const edited = (id: number, content: string): CommentEditedEvent => ({
  type: 'comment_edited',
  track_id: TRACK,
  comment_id: id,
  content,
  timestamp: 42,
  is_edited: true,
  last_edited_at: '2026-11-26T09:00:00.000Z',
});
const deleted = (id: number): CommentDeletedEvent => ({
  type: 'comment_deleted',
  track_id: TRACK,
  comment_id: id,
});

const RESET: ResetEvent = { type: 'reset', track_id: TRACK, reason: 'history_trimmed' };

interface Load {
  resolve(comments: Comment[]): Promise<void>;
  reject(err: Error): Promise<void>;
}

/** Lets every promise continuation queued so far run (no timers involved). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function setup(options: SubscribeOptions = {}) {
  const loads: Load[] = [];
  const log: string[] = [];
  let stream: StreamHandlers | undefined;
  let subscribedWith: { trackId: string; options: SubscribeOptions | undefined } | undefined;
  const subscription = {
    lastEventId: null as string | null,
    state: 'connecting' as ConnectionState,
    closed: false,
    close() {
      subscription.closed = true;
      stream?.state?.('closed');
    },
  };
  const client: LiveListClient = {
    listAllComments(trackId, opts) {
      log.push(`load ${trackId} ${opts?.order}`);
      return new Promise<Comment[]>((resolve, reject) => {
        loads.push({
          resolve: async (comments) => {
            resolve(comments);
            await settle();
          },
          reject: async (err) => {
            reject(err);
            await settle();
          },
        });
      });
    },
    subscribeTrack(trackId, handlers, opts) {
      subscribedWith = { trackId, options: opts };
      stream = handlers;
      handlers.state?.('connecting');
      return subscription;
    },
  };
  const handlers: LiveListHandlers = {
    change: () => log.push(`change ${ids(list)}`),
    applied: (e) => log.push(`applied ${e.type}`),
    status: (s) => log.push(`status ${s}`),
    user_typing: (e) => log.push(`typing ${e.username}`),
    loadFailed: (err) => log.push(`loadFailed ${(err as Error).message}`),
    streamError: (e) => log.push(`streamError ${e.message}`),
  };
  const list = openLiveList(client, TRACK, handlers, options);
  const events = () => {
    if (!stream) throw new Error('not subscribed');
    return stream;
  };
  const connect = () => events().connected?.({} as never, { id: null });
  return { list, loads, log, subscription, events, connect, subscribedWith: () => subscribedWith };
}

function ids(list: LiveList): string {
  return `[${[...list.comments.keys()].join(',')}]`;
}

describe('live list', () => {
  it('subscribes to the track with the given options and reports the connection state', () => {
    const { log, subscribedWith, events } = setup({ maxRetryMs: 10000 });
    expect(subscribedWith()).toEqual({ trackId: TRACK, options: { maxRetryMs: 10000 } });
    events().state?.('live');
    expect(log).toEqual(['status connecting', 'status live']);
  });

  it('takes the snapshot on connected and applies events that came in meanwhile after it', async () => {
    const { list, loads, log, events, connect } = setup();
    connect();
    expect(list.loading).toBe(true);
    expect(log).toEqual(['status connecting', `load ${TRACK} timestamp`]);
    events().new_comment?.(created(comment(3)), { id: '3' });
    events().comment_edited?.(edited(1, 'changed'), { id: '4' });
    expect(list.comments.size).toBe(0);

    await loads[0]!.resolve([comment(1), comment(2)]);
    expect(list.loading).toBe(false);
    expect(ids(list)).toBe('[1,2,3]');
    expect(list.comments.get(1)).toMatchObject({
      content: 'changed',
      timestamp: 42,
      is_edited: true,
    });
    // Each queued event is applied, then one change for the lot.
    expect(log.slice(2)).toEqual([
      'applied new_comment',
      'applied comment_edited',
      'change [1,2,3]',
    ]);
  });

  it('holds each comment once and never brings a deleted one back', async () => {
    const { list, loads, log, events, connect } = setup();
    connect();
    await loads[0]!.resolve([comment(1)]);
    log.length = 0;
    events().new_comment?.(created(comment(1, { content: 'again' })), { id: '5' });
    events().new_comment?.(created(comment(9, { track_id: 'other' })), { id: '6' });
    events().comment_deleted?.(deleted(1), { id: '7' });
    events().new_comment?.(created(comment(1)), { id: '8' });
    expect(ids(list)).toBe('[]');
    expect(log).toEqual([
      'applied new_comment',
      'change [1]',
      'applied new_comment',
      'change [1]',
      'applied comment_deleted',
      'change []',
      'applied new_comment',
      'change []',
    ]);
    expect(list.comments.size).toBe(0);
  });

  it('keeps a comment deleted during a load out of the snapshot', async () => {
    const { list, loads, events, connect } = setup();
    connect();
    events().comment_deleted?.(deleted(2), { id: '9' });
    await loads[0]!.resolve([comment(1), comment(2)]);
    expect(ids(list)).toBe('[1]');
    events().state?.('reconnecting');
    connect(); // no event id seen (the fake's lastEventId stays null): retaken
    await loads[1]!.resolve([comment(1), comment(2)]);
    expect(ids(list)).toBe('[1]');
  });

  it('retakes the snapshot on a reconnect only when it cannot resume', async () => {
    const { loads, subscription, events, connect } = setup();
    connect();
    await loads[0]!.resolve([]);
    subscription.lastEventId = '12';
    events().state?.('reconnecting');
    connect();
    expect(loads).toHaveLength(1);
    subscription.lastEventId = null;
    events().state?.('reconnecting');
    connect();
    expect(loads).toHaveLength(2);
  });

  it('reloads on reset, queueing events, and reports reloading then reset', async () => {
    const { list, loads, log, events, connect } = setup();
    connect();
    await loads[0]!.resolve([comment(1)]);
    log.length = 0;
    events().reset?.(RESET, { id: null });
    expect(list.loading).toBe(true);
    events().new_comment?.(created(comment(5)), { id: '50' });
    // A reset's reload stands for this connection's replay: no "caught up" on top of it.
    events().caught_up?.({ replayed: 3 });
    await loads[1]!.resolve([comment(2)]);
    expect(ids(list)).toBe('[2,5]');
    expect(log).toEqual([
      'status reloading',
      `load ${TRACK} timestamp`,
      'applied new_comment',
      'change [2,5]',
      'status reset',
    ]);
  });

  it('reports caught-up after a reconnect whose replay brought events, and not otherwise', async () => {
    const { log, loads, subscription, events, connect } = setup();
    connect();
    await loads[0]!.resolve([]);
    events().reset?.(RESET, { id: null });
    await loads[1]!.resolve([]);
    subscription.lastEventId = '3';
    log.length = 0;
    events().state?.('reconnecting'); // a new connection: the reset no longer applies
    events().caught_up?.({ replayed: 0 });
    events().caught_up?.({ replayed: 2 });
    expect(log).toEqual(['status reconnecting', 'status caught-up']);
  });

  it('keeps only the newest snapshot when loads overlap', async () => {
    const { list, loads, events, connect } = setup();
    connect();
    events().reset?.(RESET, { id: null });
    await loads[1]!.resolve([comment(2)]);
    expect(ids(list)).toBe('[2]');
    await loads[0]!.resolve([comment(1)]);
    expect(ids(list)).toBe('[2]');
    expect(list.loading).toBe(false);
  });

  it('reports a failed snapshot and goes on applying live events', async () => {
    const { list, loads, log, events, connect } = setup();
    connect();
    events().new_comment?.(created(comment(4)), { id: '4' });
    await loads[0]!.reject(new Error('HTTP 503'));
    expect(list.loading).toBe(false);
    expect(ids(list)).toBe('[4]');
    expect(log).toContain('loadFailed HTTP 503');
  });

  it('takes this client’s own writes once, and none while a snapshot loads', async () => {
    const { list, loads, log, events, connect } = setup();
    connect();
    expect(list.add(comment(7))).toBe(false); // the snapshot or a queued event brings it
    await loads[0]!.resolve([]);
    log.length = 0;
    expect(list.add(comment(7))).toBe(true);
    expect(list.add(comment(7))).toBe(false);
    events().new_comment?.(created(comment(7)), { id: '7' });
    expect(list.add(comment(8, { track_id: 'other' }))).toBe(false);
    expect(list.replace(comment(7, { content: 'edited' }))).toBe(true);
    expect(list.replace(comment(99))).toBe(false);
    expect(list.comments.get(7)?.content).toBe('edited');
    expect(list.remove(7)).toBe(true);
    expect(list.add(comment(7))).toBe(false);
    // The caller renders its own writes: only the stream's event changed anything by itself.
    expect(log).toEqual(['applied new_comment', 'change [7]']);
  });

  it('passes typing and stream errors through', () => {
    const { log, events } = setup();
    log.length = 0;
    events().user_typing?.(
      {
        type: 'user_typing',
        track_id: TRACK,
        user_id: 2,
        username: 'bob',
        is_typing: true,
        expires_in_ms: 5000,
      },
      { id: null },
    );
    events().error?.({ message: 'stream error', fatal: true });
    expect(log).toEqual(['typing bob', 'streamError stream error']);
  });

  it('after close, calls no handler and drops a pending snapshot', async () => {
    const { list, loads, log, subscription, events, connect } = setup();
    connect();
    log.length = 0;
    list.close();
    expect(subscription.closed).toBe(true);
    events().new_comment?.(created(comment(1)), { id: '1' });
    events().state?.('live');
    await loads[0]!.resolve([comment(2)]);
    expect(log).toEqual([]); // not even the subscription's own "closed"
    expect(list.comments.size).toBe(0);
    expect(list.add(comment(3))).toBe(false);
  });
});
