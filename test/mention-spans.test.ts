import { mentionSpans, mentionedUsernames } from '../src/events/mentions';
import { mentionedUsernames as domainMentionedUsernames } from '../src/domain/mentions';

/** The parser the demo page highlights with is the one the server resolves mentions with. */
describe('mentionSpans', () => {
  it('finds each mention (repeats included) where the server finds one', () => {
    const text = 'hi @alice, mail x@bob.com, @alice again, @@carol and @dave_2.';
    const spans = mentionSpans(text);
    expect(spans.map((s) => text.slice(s.start, s.end))).toEqual(['@alice', '@alice', '@dave_2']);
    expect(spans.map((s) => s.username)).toEqual(['alice', 'alice', 'dave_2']);
    expect([...new Set(spans.map((s) => s.username))]).toEqual(mentionedUsernames(text));
  });

  it('skips a name longer than a username may be, as the server does', () => {
    const text = `@${'a'.repeat(33)} and @${'b'.repeat(32)}`;
    expect(mentionSpans(text).map((s) => s.username)).toEqual(['b'.repeat(32)]);
    expect(mentionedUsernames(text)).toEqual(['b'.repeat(32)]);
  });

  it('is what the domain uses', () => {
    expect(domainMentionedUsernames).toBe(mentionedUsernames);
  });
});
