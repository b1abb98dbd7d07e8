/** What the demo page knows, shared by its parts, and the client it talks to the service with. */

import type { Comment } from '../../events/catalogue';
import type { LiveList } from '../live-list';
import {
  createClient,
  type DemoTrack,
  type DemoUser,
  type Subscription,
} from '../trackcomments-client.js';

const FALLBACK_DURATION_S = 300;

/**
 * The tabs of one origin and user share their streams (shared-stream.ts); `?share=off` in the
 * page's URL gives each tab its own, to compare.
 */
export const client = createClient(
  new URLSearchParams(location.search).get('share') === 'off' ? { sharing: false } : {},
);

export interface Typist {
  username: string;
  timer: ReturnType<typeof setTimeout>;
}

export interface PageState {
  me: DemoUser | null;
  users: DemoUser[];
  tracks: DemoTrack[];
  track: DemoTrack | null;
  /** The open track's comments, snapshot and live; null when signed out or no track. */
  list: LiveList | null;
  meSub: Subscription | null;
  /** Simulated player position, in seconds. */
  position: number;
  playing: boolean;
  lastFrame: number;
  editingId: number | null;
  replyTo: Comment | null;
  typists: Map<number, Typist>;
  typingActive: boolean;
  typingSentAt: number;
  typingIdleTimer: ReturnType<typeof setTimeout> | null;
}

export const state: PageState = {
  me: null,
  users: [],
  tracks: [],
  track: null,
  list: null,
  meSub: null,
  position: 0,
  playing: false,
  lastFrame: 0,
  editingId: null,
  replyTo: null,
  typists: new Map(),
  typingActive: false,
  typingSentAt: 0,
  typingIdleTimer: null,
};

const NO_COMMENTS: ReadonlyMap<number, Comment> = new Map();

/** id -> Comment; the single source for the list and the markers (so nothing shows twice). */
export function comments(): ReadonlyMap<number, Comment> {
  return state.list?.comments ?? NO_COMMENTS;
}

/** The track's length, or (when unknown) enough to show every comment. */
export function duration(): number {
  if (state.track && typeof state.track.duration_s === 'number' && state.track.duration_s > 0) {
    return state.track.duration_s;
  }
  let max = 0;
  for (const c of comments().values()) max = Math.max(max, c.timestamp);
  return Math.max(FALLBACK_DURATION_S, Math.ceil(max + 30));
}
