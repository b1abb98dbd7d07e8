/** "alice is typing…": who else is typing on the open track, from `user_typing` events. */

import type { UserTypingEvent } from '../../events/catalogue';
import { ui } from './dom.js';
import { state } from './page-state.js';

export function setTypist(data: UserTypingEvent): void {
  if (state.me && data.user_id === state.me.id) return;
  const existing = state.typists.get(data.user_id);
  if (existing) clearTimeout(existing.timer);
  if (!data.is_typing) {
    state.typists.delete(data.user_id);
  } else {
    // The event says how long it holds: an indicator outlives no lost "stopped" event.
    const timer = setTimeout(() => clearTypist(data.user_id), Math.max(0, data.expires_in_ms));
    state.typists.set(data.user_id, { username: data.username, timer });
  }
  renderTyping();
}

export function clearTypist(userId: number): void {
  const entry = state.typists.get(userId);
  if (!entry) return;
  clearTimeout(entry.timer);
  state.typists.delete(userId);
  renderTyping();
}

export function clearTypists(): void {
  for (const t of state.typists.values()) clearTimeout(t.timer);
  state.typists.clear();
  renderTyping();
}

function renderTyping(): void {
  const names = [...state.typists.values()].map((t) => t.username);
  let text = '';
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2)
    text = `${names[0]}, ${names[1]} and ${names.length - 2} more are typing…`;
  ui.typing.textContent = text;
  ui.typing.hidden = !text;
}
