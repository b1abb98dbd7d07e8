import {
  createClient,
  type ChannelLike,
  type ConnectionState,
  type EventSourceConstructor,
  type EventSourceLike,
  type LockManagerLike,
  type SharingSeams,
  type StreamHandlers,
  type Subscription,
} from '../src/client/trackcomments-client';

/**
 * One fake browser origin for test/shared-stream.test.ts: Web Locks (one holder per name, FIFO
 * queue, released when the holder's tab closes) and BroadcastChannel (asynchronous,
 * structured-cloned, never echoed to the sender), and tabs that each run their own client.
 */
type Listener = (event: MessageEvent) => void;

interface LockWaiter {
  tab: FakeTab;
  granted: boolean;
  start(): void;
  release(): void;
}

/** One origin of one browser profile: its locks and channels. */
export class FakeOrigin {
  private readonly queues = new Map<string, LockWaiter[]>();
  readonly channels = new Set<FakeChannel>();

  tab(name: string): FakeTab {
    return new FakeTab(this, name);
  }

  request(
    tab: FakeTab,
    name: string,
    signal: AbortSignal | undefined,
    callback: (lock: unknown) => Promise<void>,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const queue = this.queues.get(name) ?? [];
      this.queues.set(name, queue);
      const waiter: LockWaiter = {
        tab,
        granted: false,
        start: () => {
          waiter.granted = true;
          // Granted asynchronously, as browsers do; the lock is held until the callback settles.
          void Promise.resolve()
            .then(() => callback({ name }))
            .then(
              (value) => {
                waiter.release();
                resolve(value);
              },
              (err: unknown) => {
                waiter.release();
                reject(err);
              },
            );
        },
        release: () => this.drop(name, waiter),
      };
      queue.push(waiter);
      signal?.addEventListener('abort', () => {
        if (waiter.granted) return;
        this.drop(name, waiter);
        reject(new Error('AbortError'));
      });
      if (queue.length === 1) waiter.start();
    });
  }

  /** Removes a waiter; when it held the lock, the next in line gets it. */
  drop(name: string, waiter: LockWaiter): void {
    const queue = this.queues.get(name) ?? [];
    const at = queue.indexOf(waiter);
    if (at < 0) return;
    queue.splice(at, 1);
    if (at === 0 && queue[0] && !queue[0].granted) queue[0].start();
  }

  /** A closing tab loses its locks and queue places without running any of its code. */
  forget(tab: FakeTab): void {
    for (const [name, queue] of this.queues) {
      for (const waiter of queue.filter((w) => w.tab === tab)) this.drop(name, waiter);
    }
  }

  holders(name: string): FakeTab[] {
    return (this.queues.get(name) ?? []).filter((w) => w.granted).map((w) => w.tab);
  }
}

export class FakeChannel implements ChannelLike {
  private readonly listeners: Listener[] = [];
  open = true;

  constructor(
    private readonly origin: FakeOrigin,
    readonly name: string,
    readonly owner: FakeTab,
  ) {
    origin.channels.add(this);
  }

  postMessage(message: unknown): void {
    const copy = structuredClone(message);
    for (const other of this.origin.channels) {
      if (other === this || other.name !== this.name) continue;
      setImmediate(() => other.receive(copy));
    }
  }

  addEventListener(_type: 'message', listener: Listener): void {
    this.listeners.push(listener);
  }

  receive(data: unknown): void {
    if (!this.open) return;
    for (const l of this.listeners) l({ data } as MessageEvent);
  }

  close(): void {
    this.open = false;
    this.origin.channels.delete(this);
  }
}

/** A fake stream connection: the test opens it and sends events into it. */
export class FakeEventSource implements EventSourceLike {
  readyState = 0;
  private readonly listeners = new Map<string, Listener[]>();

  constructor(
    readonly url: string,
    readonly tab: FakeTab,
  ) {}

  addEventListener(type: string, listener: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  close(): void {
    this.readyState = 2;
  }

  get lastEventIdParam(): string | null {
    return new URL(this.url).searchParams.get('last_event_id');
  }

  open(): void {
    this.readyState = 1;
    this.fire('open', {});
    this.send('connected', { type: 'connected', message: 'hi', connection_id: `c-${this.url}` });
  }

  send(event: string, data: object, id?: number): void {
    this.fire(event, { data: JSON.stringify(data), lastEventId: id === undefined ? '' : `${id}` });
  }

  private fire(type: string, init: object): void {
    if (this.readyState === 2) return;
    for (const l of this.listeners.get(type) ?? []) l(init as MessageEvent);
  }
}

export const sources: FakeEventSource[] = [];

/** An EventSource class whose instances belong to `tab` and are listed in `sources`. */
export function sourcesOf(tab: FakeTab): EventSourceConstructor {
  return class extends FakeEventSource {
    constructor(url: string) {
      super(url, tab);
      sources.push(this);
    }
  };
}

/** One tab of the page: its own client, as the demo page makes one. */
export class FakeTab {
  readonly mentions: string[] = [];
  readonly states: ConnectionState[] = [];
  readonly connected: string[] = [];
  sub: Subscription | null = null;
  private readonly seams: SharingSeams;

  constructor(
    private readonly origin: FakeOrigin,
    readonly name: string,
  ) {
    const locks: LockManagerLike = {
      request: (lockName, options, callback) =>
        origin.request(this, lockName, options.signal, callback),
    };
    this.seams = {
      locks,
      openChannel: (channelName) => new FakeChannel(origin, channelName, this),
    };
  }

  /** Subscribes to the personal stream, or to `track`'s; mentions and comments land in `mentions`. */
  subscribe(user: number, sharing: 'shared' | 'off' = 'shared', track?: string): this {
    const client = createClient({
      baseUrl: 'http://service.test',
      EventSource: sourcesOf(this),
      sharing: sharing === 'off' ? false : this.seams,
    });
    const handlers: StreamHandlers = {
      state: (s) => this.states.push(s),
      connected: (d) => this.connected.push(d.connection_id),
      mention: (d, meta) => this.mentions.push(`${d.comment.id}#${meta.id}`),
      new_comment: (d, meta) => this.mentions.push(`${d.comment.id}#${meta.id}`),
    };
    const options = { sharedAs: user, replayQuietMs: 5 };
    this.sub =
      track === undefined
        ? client.subscribeMe(handlers, options)
        : client.subscribeTrack(track, handlers, options);
    return this;
  }

  /** The browser closes the tab: no code of it runs, its locks and channels and streams go. */
  kill(): void {
    this.origin.forget(this);
    for (const ch of [...this.origin.channels]) if (ch.owner === this) ch.close();
    for (const s of sources) if (s.tab === this) s.close();
    this.sub = null;
  }
}
