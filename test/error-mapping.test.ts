import { AuthError, bearerToken } from '../src/auth/authenticate';
import { DomainError, type DomainErrorCode } from '../src/domain/errors';
import { errorAnswer, errorBody } from '../src/http/errors';
import { withValueAt } from '../src/store/comment-store';

/** Domain and auth failures carry codes only; src/http/errors.ts alone gives them statuses. */
describe('error mapping', () => {
  it.each<[DomainErrorCode, number]>([
    ['not_found', 404],
    ['forbidden', 403],
    ['invalid_cursor', 400],
    ['invalid_timestamp', 400],
    ['invalid_parent', 400],
    ['too_many_mentions', 400],
    ['username_taken', 409],
    ['unknown_user', 400],
    ['unknown_album', 400],
  ])('DomainError %s answers %i', (code, status) => {
    const err = new DomainError(code, 'because');
    expect(err).not.toHaveProperty('status');
    expect(errorAnswer(err)).toEqual({ status, code, message: 'because' });
  });

  it.each<[AuthError['code'], number]>([
    ['unauthenticated', 401],
    ['forbidden', 403],
  ])('AuthError %s answers %i', (code, status) => {
    const err = new AuthError(code, 'who?');
    expect(err).not.toHaveProperty('status');
    expect(errorAnswer(err)).toEqual({ status, code, message: 'who?' });
  });

  it('writes the one error body shape', () => {
    expect(JSON.stringify(errorBody('not_found', 'track not found'))).toBe(
      '{"error":{"code":"not_found","message":"track not found"}}',
    );
  });
});

describe('bearerToken', () => {
  it.each([
    ['Bearer abc.def.ghi', 'abc.def.ghi'],
    ['bearer   tok  ', 'tok'],
    ['Bearer', null],
    ['Bearer a b', null],
    ['Basic dXNlcjpwYXNz', null],
    ['', null],
  ])('%j gives %j', (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });
});

describe("the hot insert's id path", () => {
  const data = {
    type: 'new_comment' as const,
    track_id: 't',
    comment: { id: 0, content: 'x', mentions: [{ id: 2, username: 'b' }] },
  };

  it('sets the value at the path on a copy, sharing what it does not change', () => {
    const out = withValueAt(data, ['comment', 'id'], 41);
    expect(out.comment.id).toBe(41);
    expect(data.comment.id).toBe(0);
    expect(out.comment.mentions).toBe(data.comment.mentions);
  });

  it('leaves data whose path has no parent as it is, as jsonb_set does', () => {
    const deleted = { type: 'comment_deleted' as const, track_id: 't', comment_id: 3 };
    expect(withValueAt(deleted, ['comment', 'id'], 41)).toBe(deleted);
  });
});
