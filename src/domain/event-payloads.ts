/**
 * How a comment's stored events change when a later edit or delete rewrites the history
 * ("deleted means gone": replays carry a comment's current content only, and nothing of a
 * deleted one). The events themselves are built by ../events/builders.
 */
import type { Comment } from './types';
import { userOfStream, type StoredEvent, type StoredEventData } from '../events/types';
import { mentionData, newCommentData } from '../events/builders';

/**
 * An earlier event of `current` once it was edited: what it would say if emitted now (the
 * current content and mentions), keeping what only that event knows (who sent a mention,
 * when an edit happened). Returns the event's own data when there is nothing to change.
 */
export function reviseForEdit(event: StoredEvent, current: Comment): StoredEventData {
  const data = event.data;
  switch (data.type) {
    case 'new_comment':
      return newCommentData(current);
    case 'mention': {
      const recipient = userOfStream(event.stream);
      return recipient === null ? data : mentionData(recipient, current, data.from_user);
    }
    case 'comment_edited':
      return { ...data, content: current.content };
    default:
      return data;
  }
}

/**
 * An earlier event of a deleted comment: its content (and the mentions it made) removed.
 * `content` stays, empty, so every field keeps its type for clients; ids and order stay.
 */
export function scrubForDelete(event: StoredEvent): StoredEventData {
  const data = event.data;
  switch (data.type) {
    case 'new_comment':
    case 'mention':
      return { ...data, comment: { ...data.comment, content: '', mentions: [] } };
    case 'comment_edited':
      return { ...data, content: '' };
    default:
      return data;
  }
}
