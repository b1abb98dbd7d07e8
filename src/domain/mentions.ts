/**
 * `@username` references in a comment. A mention starts at a word boundary
 * (so an e-mail address is not one) and usernames are matched exactly
 * (they are case-sensitive in the catalogue).
 */
const MENTION = /(?<![A-Za-z0-9_@])@([A-Za-z0-9_]{1,32})(?![A-Za-z0-9_])/g;

export function mentionedUsernames(content: string): string[] {
  const names = new Set<string>();
  for (const match of content.matchAll(MENTION)) names.add(match[1]!);
  return [...names];
}

/**
 * Most distinct existing users one comment may name (contract section 7, "Bounded fan-out per
 * request"): each named user costs a stored event and a publish.
 */
export const MAX_MENTIONED_USERS = 20;
