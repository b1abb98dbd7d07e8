import { canDeleteComment, canEditComment } from '../src/domain/permissions';
import type { Comment, TrackContext, User } from '../src/domain/types';

/** Who may change a comment (contract section 4), as plain rules. */
const user = (id: number, is_team = false): User => ({
  id,
  username: `u${id}`,
  is_creator: false,
  is_team,
});
const author = user(1);
const creator = { ...user(2), is_creator: true };
const staff = user(3, true);
const stranger = user(4);
// A creator of another album is no one special here.
const otherCreator = { ...user(5), is_creator: true };

const comment = { id: 7, track_id: 't', user: { id: author.id, username: 'u1' } } as Comment;
const track = { id: 't', album_creator_id: creator.id } as TrackContext;

describe('permissions', () => {
  it('only the author edits', () => {
    expect(canEditComment(author, comment)).toBe(true);
    for (const u of [creator, staff, stranger, otherCreator]) {
      expect(canEditComment(u, comment)).toBe(false);
    }
  });

  it("the author, the album's creator and the team delete; nobody else", () => {
    for (const u of [author, creator, staff])
      expect(canDeleteComment(u, comment, track)).toBe(true);
    for (const u of [stranger, otherCreator]) {
      expect(canDeleteComment(u, comment, track)).toBe(false);
    }
  });
});
