/** Domain objects, in the contract's JSON shape (snake_case), shared by the store, the domain services and HTTP. */

export interface UserRef {
  id: number;
  username: string;
}

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

export interface Comment {
  id: number;
  track_id: string;
  user: UserRef;
  content: string;
  timestamp: number;
  parent_id: number | null;
  mentions: UserRef[];
  is_edited: boolean;
  last_edited_at: string | null;
  created_at: string;
}

export type CommentOrder = 'timestamp' | 'created';

/** Where a page of comments continues: the sort key of the last item returned. */
export interface CommentCursor {
  order: CommentOrder;
  timestamp: number;
  id: number;
}

/** Domain failures; HTTP maps each `code` to a status. */
export class DomainError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 409,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
