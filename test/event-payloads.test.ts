/**
 * What a comment's earlier stored events say after it is edited or deleted ("deleted means
 * gone", contract section 7), and what a mention carries (section 5 + 7), as pure functions.
 */
import type { Comment, MentionEvent } from '../src/events/catalogue';
import {
  commentDeletedData,
  commentEditedData,
  connectedData,
  mentionData,
  newCommentData,
  resetData,
  userTypingData,
} from '../src/events/builders';
import { reviseForEdit, scrubForDelete } from '../src/domain/event-payloads';
import type { StoredEvent } from '../src/events/types';

const alice = { id: 2, username: 'alice' };
const bob = { id: 3, username: 'bob' };
const dave = { id: 5, username: 'dave' };
const CREATOR = 1;

const original: Comment = {
  id: 10,
  track_id: 't1',
  user: alice,
  content: 'secret @bob @dave',
  timestamp: 4,
  parent_id: null,
  mentions: [bob, dave],
  is_edited: false,
  last_edited_at: null,
  created_at: '2026-11-26T10:00:00.000Z',
};
const current: Comment = {
  ...original,
  content: 'public @dave',
  mentions: [dave],
  is_edited: true,
  last_edited_at: '2026-11-26T10:05:00.000Z',
};

const stored = (stream: string, seq: number, data: StoredEvent['data']): StoredEvent => ({
  stream,
  seq,
  type: data.type as StoredEvent['type'],
  data,
});

const history = [
  stored('track:t1', 1, newCommentData(original)),
  stored(`user:${bob.id}`, 1, mentionData(bob.id, original, alice)),
  stored(`user:${dave.id}`, 1, mentionData(dave.id, original, alice)),
  stored(`user:${CREATOR}`, 1, mentionData(CREATOR, original, alice)),
  stored('track:t1', 2, commentEditedData({ ...original, content: 'v2', is_edited: true })),
  stored('track:t1', 3, commentDeletedData('t1', 99)),
];

test('a mention lists only its recipient among the named', () => {
  expect(mentionData(bob.id, original, alice)).toEqual({
    type: 'mention',
    track_id: 't1',
    comment: { ...original, mentions: [bob] },
    from_user: alice,
  });
  expect(mentionData(CREATOR, original, alice).comment.mentions).toEqual([]);
});

test('after an edit, earlier events carry the current content and mentions only', () => {
  const revised = history.map((e) => reviseForEdit(e, current));
  expect(revised[0]).toEqual({ type: 'new_comment', track_id: 't1', comment: current });
  // bob is no longer named; dave still is; the creator never was.
  const revisedMentions = revised.slice(1, 4) as MentionEvent[];
  expect(revisedMentions.map((d) => d.comment)).toEqual([
    { ...current, mentions: [] },
    { ...current, mentions: [dave] },
    { ...current, mentions: [] },
  ]);
  expect(revisedMentions.map((d) => d.from_user)).toEqual([alice, alice, alice]);
  expect(revised[4]).toEqual({ ...history[4]!.data, content: 'public @dave' });
  // Nothing to change: the very same object, so the store leaves the row alone.
  expect(revised[5]).toBe(history[5]!.data);
  expect(JSON.stringify(revised)).not.toContain('secret');
});

test('after a delete, earlier events keep their shape without content or mentions', () => {
  const scrubbed = history.map(scrubForDelete);
  expect(scrubbed[0]).toEqual({
    type: 'new_comment',
    track_id: 't1',
    comment: { ...original, content: '', mentions: [] },
  });
  for (const d of scrubbed.slice(1, 4)) {
    expect(d).toEqual({
      type: 'mention',
      track_id: 't1',
      comment: { ...original, content: '', mentions: [] },
      from_user: alice,
    });
  }
  expect(scrubbed[4]).toEqual({ ...history[4]!.data, content: '' });
  expect(scrubbed[5]).toBe(history[5]!.data);
  expect(JSON.stringify(scrubbed)).not.toMatch(/secret|v2|bob|dave/);
});

test('every event is built with the contract fields in wire order', () => {
  // Exact JSON text: the key order is what clients and the stored history have always seen.
  expect(JSON.stringify(connectedData('t1', 'c-1'))).toBe(
    '{"type":"connected","track_id":"t1","message":"Connected to track t1","connection_id":"c-1"}',
  );
  expect(JSON.stringify(connectedData(null, 'c-2'))).toBe(
    '{"type":"connected","track_id":null,"message":"Connected to your personal stream","connection_id":"c-2"}',
  );
  expect(JSON.stringify(newCommentData(current))).toBe(
    `{"type":"new_comment","track_id":"t1","comment":${JSON.stringify(current)}}`,
  );
  expect(JSON.stringify(commentEditedData(current))).toBe(
    '{"type":"comment_edited","track_id":"t1","comment_id":10,"content":"public @dave",' +
      '"timestamp":4,"is_edited":true,"last_edited_at":"2026-11-26T10:05:00.000Z"}',
  );
  expect(JSON.stringify(commentDeletedData('t1', 10))).toBe(
    '{"type":"comment_deleted","track_id":"t1","comment_id":10}',
  );
  expect(JSON.stringify(userTypingData('t1', alice, true, 3000))).toBe(
    '{"type":"user_typing","track_id":"t1","user_id":2,"username":"alice","is_typing":true,"expires_in_ms":3000}',
  );
  // A full user as the sender: only its reference goes out.
  const sender = { ...alice, is_creator: false, is_team: true };
  expect(JSON.stringify(mentionData(dave.id, current, sender))).toBe(
    `{"type":"mention","track_id":"t1","comment":${JSON.stringify({ ...current, mentions: [dave] })},` +
      '"from_user":{"id":2,"username":"alice"}}',
  );
  expect(JSON.stringify(resetData('t1', 'history_expired'))).toBe(
    '{"type":"reset","track_id":"t1","reason":"history_expired"}',
  );
  expect(JSON.stringify(resetData(null, 'invalid_last_event_id'))).toBe(
    '{"type":"reset","track_id":null,"reason":"invalid_last_event_id"}',
  );
});
