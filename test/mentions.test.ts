import { mentionRecipients } from '../src/domain/comment-service';
import { mentionedUsernames } from '../src/domain/mentions';

/** Mention parsing and fan-out, without HTTP or a database. */
describe('mentionedUsernames', () => {
  it.each([
    ['hi @alice', ['alice']],
    ['@alice at the start, @bob_2 in the middle.', ['alice', 'bob_2']],
    ['(@alice), "@bob"!', ['alice', 'bob']],
    ['@alice @alice @Alice', ['alice', 'Alice']], // once each; usernames are case-sensitive
    ['mail me at someone@example.com', []], // not at a word boundary
    ['@@alice and x@bob', []],
    ['@ alone, @-dash, @', []],
    [`@${'a'.repeat(32)}`, ['a'.repeat(32)]],
    [`@${'a'.repeat(33)} is too long`, []], // longer than a username may be: not a mention
    ['@alice-bob @carol.', ['alice', 'carol']],
  ])('%j names %j', (content, names) => {
    expect(mentionedUsernames(content)).toEqual(names);
  });
});

describe('mentionRecipients', () => {
  it('is each named user and the album creator once, never the author', () => {
    expect(mentionRecipients(1, [2, 3, 2], 9)).toEqual([2, 3, 9]);
    expect(mentionRecipients(9, [2, 9], 9)).toEqual([2]);
    expect(mentionRecipients(2, [2], 9)).toEqual([9]);
    expect(mentionRecipients(9, [], 9)).toEqual([]);
  });
});
