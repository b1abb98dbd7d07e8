/**
 * `@username` references in a comment. The parser is part of the contract shared with the
 * browser (src/events/mentions.ts); the limit on how many users a comment may name is the
 * domain's own.
 */
export { mentionedUsernames } from '../events/mentions';

/**
 * Most distinct existing users one comment may name (contract section 7, "Bounded fan-out per
 * request"): each named user costs a stored event and a publish.
 */
export const MAX_MENTIONED_USERS = 20;
