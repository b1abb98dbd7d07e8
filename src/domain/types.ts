/** Domain objects, in the contract's JSON shape (snake_case), shared by the store, the domain services and HTTP. */

import type { UserRef } from '../events/catalogue';

/** The comment and user reference are the contract's wire shapes, declared once there. */
export type { Comment, UserRef } from '../events/catalogue';

export interface User extends UserRef {
  is_creator: boolean;
  is_team: boolean;
}

export interface Album {
  id: number;
  title: string;
  created_by_id: number;
}

export interface Track {
  id: string;
  title: string;
  album_id: number;
  duration_s: number | null;
}

/** A track with what permission checks and mention fan-out need. */
export interface TrackContext extends Track {
  album_title: string;
  album_creator_id: number;
}

export type CommentOrder = 'timestamp' | 'created';

/** Where a page of comments continues: the sort key of the last item returned. */
export interface CommentCursor {
  order: CommentOrder;
  timestamp: number;
  id: number;
}
