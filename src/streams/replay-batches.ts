import type { Socket } from 'node:net';
import type { StoredEvent } from '../events/types';
import { resetData } from '../events/builders';
import { frameText } from './frames';

/** Frames of consecutive stored events, for one socket write. */
export interface StoredBatch {
  text: string;
  /** Seq of the batch's last event. */
  lastSeq: number;
  /** The batch's event types, in order (for the delivery metric). */
  types: StoredEvent['type'][];
}

/** Marks where the events stop following on from the ones before: some were pruned. */
export const GAP = 'gap';

/**
 * Cuts the stored events that follow `after`, up to `upTo`, into SSE text of at most
 * `maxBytes` per batch (an event larger than that goes alone), built one batch at a time so
 * a long replay is never held in memory whole. Only an unbroken run of seqs is taken: at the
 * first seq that is not the one after its predecessor, or when the events bring nothing new
 * although `upTo` is not reached, it yields GAP and stops. Those events were pruned (retention)
 * between reading the head and reading the log: the subscriber must get `reset`, never a
 * silent gap. Events at or below `after` were sent already; those above `upTo` come later.
 */
export function* storedBatches(
  events: readonly StoredEvent[],
  after: number,
  upTo: number,
  maxBytes: number,
): Generator<StoredBatch | typeof GAP> {
  let last = after;
  let text = '';
  let bytes = 0;
  let types: StoredEvent['type'][] = [];
  let broken = false;
  for (const e of events) {
    if (last >= upTo) break;
    if (e.seq <= last) continue;
    if (e.seq !== last + 1) {
      broken = true;
      break;
    }
    const frame = frameText(e.seq, e.type, JSON.stringify(e.data));
    const size = Buffer.byteLength(frame);
    if (bytes > 0 && bytes + size > maxBytes) {
      yield { text, lastSeq: last, types };
      text = '';
      bytes = 0;
      types = [];
    }
    text += frame;
    bytes += size;
    types.push(e.type);
    last = e.seq;
  }
  if (bytes > 0) yield { text, lastSeq: last, types };
  if (last < upTo && (broken || last === after)) yield GAP;
}

/** The `reset` event: history no longer covers the client's Last-Event-ID. */
export function resetFrame(trackId: string | null, reason: string): string {
  return frameText(null, 'reset', JSON.stringify(resetData(trackId, reason)));
}

/**
 * Resolves once `socket` has no more than `highWater` bytes unsent (or has closed): true, or
 * false when it stayed above that for `stallMs` (a client that does not read).
 */
export function drained(
  socket: Pick<Socket, 'writableLength' | 'on' | 'off'>,
  highWater: number,
  stallMs: number,
): Promise<boolean> {
  if (socket.writableLength <= highWater) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.off('drain', onDone);
      socket.off('close', onDone);
      resolve(ok);
    };
    const onDone = () => done(true);
    const timer = setTimeout(() => done(false), stallMs);
    socket.on('drain', onDone);
    socket.on('close', onDone);
  });
}
