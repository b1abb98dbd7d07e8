import { performance } from 'node:perf_hooks';
import type { Metrics } from '../metrics/metrics';
import type { StreamSession } from './session';

/** One encoded event waiting for its stream's next flush. */
export interface StagedFrame {
  frame: Buffer;
  seq: number | null;
  type: string;
  /** performance.now() when the message reached this replica. */
  receivedAt: number;
}

/**
 * Writes frames staged together to every live session: one shared Buffer, one write per
 * session. A session whose replay already sent some of these ids (rare) gets only the rest,
 * frame by frame, so ids stay strictly increasing per connection. Counts deliveries and lag.
 */
export function writeStaged(
  staged: readonly StagedFrame[],
  live: Iterable<StreamSession>,
  metrics: Pick<Metrics, 'eventsDelivered' | 'deliveryLag'>,
): void {
  let firstSeq: number | null = null;
  let lastSeq: number | null = null;
  for (const f of staged) {
    if (f.seq === null) continue;
    if (firstSeq === null) firstSeq = f.seq;
    lastSeq = f.seq;
  }
  const combined =
    staged.length === 1 ? staged[0]!.frame : Buffer.concat(staged.map((f) => f.frame));
  let fullWrites = 0;
  let partial: number[] | null = null;
  for (const session of live) {
    if (firstSeq !== null && session.lastSentSeq >= firstSeq) {
      partial ??= new Array<number>(staged.length).fill(0);
      for (let i = 0; i < staged.length; i++) {
        const f = staged[i]!;
        if (f.seq !== null && f.seq <= session.lastSentSeq) continue;
        if (!session.write(f.frame)) break;
        partial[i]!++;
        if (f.seq !== null) session.lastSentSeq = f.seq;
      }
      continue;
    }
    if (session.write(combined)) {
      fullWrites++;
      if (lastSeq !== null) session.lastSentSeq = lastSeq;
    }
  }
  const now = performance.now();
  for (let i = 0; i < staged.length; i++) {
    const f = staged[i]!;
    const delivered = fullWrites + (partial ? partial[i]! : 0);
    if (delivered > 0) metrics.eventsDelivered.inc({ type: f.type }, delivered);
    metrics.deliveryLag.observe((now - f.receivedAt) / 1000);
  }
}
