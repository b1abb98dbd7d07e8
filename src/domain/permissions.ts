/** Who may change a comment (contract section 4). */
import type { Comment, TrackContext, User } from './types';

/** Only the author edits. */
export const canEditComment = (user: User, comment: Comment): boolean =>
  comment.user.id === user.id;

/** The author, the album's creator or a team member deletes. */
export const canDeleteComment = (user: User, comment: Comment, track: TrackContext): boolean =>
  comment.user.id === user.id || track.album_creator_id === user.id || user.is_team;
