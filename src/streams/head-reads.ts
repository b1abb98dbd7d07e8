import type { EventLogReader, StreamHeadInfo } from '../events/types';

type Waiter = (head: StreamHeadInfo | undefined, err?: unknown) => void;

/** Heads requested in one tick share one log query (reconnect storms after a deploy). */
export class BatchedHeadReads {
  private pending: Map<string, Waiter[]> | null = null;

  constructor(private readonly log: Pick<EventLogReader, 'heads'>) {}

  read(stream: string): Promise<StreamHeadInfo | undefined> {
    return new Promise((resolve, reject) => {
      if (!this.pending) {
        this.pending = new Map();
        setImmediate(() => this.flush());
      }
      const waiters = this.pending.get(stream) ?? [];
      waiters.push((head, err) => (err === undefined ? resolve(head) : reject(err)));
      this.pending.set(stream, waiters);
    });
  }

  private flush(): void {
    const pending = this.pending;
    this.pending = null;
    if (!pending) return;
    this.log.heads([...pending.keys()]).then(
      (heads) => {
        for (const [stream, waiters] of pending) for (const w of waiters) w(heads.get(stream));
      },
      (err: unknown) => {
        for (const waiters of pending.values())
          for (const w of waiters) w(undefined, err ?? new Error('heads failed'));
      },
    );
  }
}
