/**
 * `@username` references in a comment's text: the one parser the server (which turns them into
 * `mentions` and `mention` events) and the demo page (which highlights them) share. Pure and
 * importing nothing, so the browser build can load it as it is.
 *
 * A mention starts at a word boundary (so an e-mail address is not one) and usernames are
 * matched exactly (they are case-sensitive in the catalogue).
 */
const MENTION = /(?<![A-Za-z0-9_@])@([A-Za-z0-9_]{1,32})(?![A-Za-z0-9_])/g;

/** Each distinct username named in `content`, in order of first appearance. */
export function mentionedUsernames(content: string): string[] {
  const names = new Set<string>();
  for (const match of content.matchAll(MENTION)) names.add(match[1]!);
  return [...names];
}

/** Where a mention sits in the text: `content.slice(start, end)` is `@username`. */
export interface MentionSpan {
  start: number;
  end: number;
  username: string;
}

/** Every mention in `content` (repeats included), in order. */
export function mentionSpans(content: string): MentionSpan[] {
  const spans: MentionSpan[] = [];
  for (const match of content.matchAll(MENTION)) {
    const start = match.index!;
    spans.push({ start, end: start + match[0].length, username: match[1]! });
  }
  return spans;
}
