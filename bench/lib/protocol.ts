/**
 * What differs between the servers the bench can drive with the same load: where a
 * subscriber connects, where a comment is published, what the publish body is, which answer
 * means "accepted" and when a stream counts as open. Chosen by name so that a plan can cross
 * to a subscriber worker over IPC.
 */
import { newCommentData } from '../../src/events/builders';

export type ServerKind = 'trackcomments' | 'nchan';

export interface Protocol {
  streamPath(trackId: string): string;
  postPath(trackId: string): string;
  /** Comment `n` of the run; its content starts with the marker `bench:<runTag>:<n>:`. */
  postBody(runTag: string, n: number, trackId: string, trackSlot: number): string;
  accepted(status: number): boolean;
  /**
   * true: a stream is open once its response head says 200 (Nchan greets with an SSE
   * comment, not an event); false: once the server's `connected` event arrived.
   */
  openOnHead: boolean;
}

const content = (runTag: string, n: number, trackSlot: number) =>
  `bench:${runTag}:${n}: comment ${n} on track ${trackSlot}`;

const trackPath = (trackId: string, what: string) =>
  `/api/tracks/${encodeURIComponent(trackId)}/${what}`;

export const PROTOCOLS: Record<ServerKind, Protocol> = {
  trackcomments: {
    streamPath: (trackId) => trackPath(trackId, 'events'),
    postPath: (trackId) => trackPath(trackId, 'comments'),
    postBody: (runTag, n, _trackId, trackSlot) =>
      JSON.stringify({ content: content(runTag, n, trackSlot), timestamp: n % 300 }),
    accepted: (status) => status === 201,
    openOnHead: false,
  },
  nchan: {
    streamPath: (trackId) => `/sub/${encodeURIComponent(trackId)}`,
    postPath: (trackId) => `/pub/${encodeURIComponent(trackId)}`,
    // The data our server would send for this comment, so that frames are the same size.
    postBody: (runTag, n, trackId, trackSlot) =>
      JSON.stringify(
        newCommentData({
          id: n + 1,
          track_id: trackId,
          user: { id: 1000 + (n % 1000), username: `bench_u${1000 + (n % 1000)}` },
          content: content(runTag, n, trackSlot),
          timestamp: n % 300,
          parent_id: null,
          mentions: [],
          is_edited: false,
          last_edited_at: null,
          created_at: new Date().toISOString(),
        }),
      ),
    // 201: delivered to a subscriber of this instance; 202: queued (subscribers elsewhere).
    accepted: (status) => status === 201 || status === 202,
    openOnHead: true,
  },
};
