/**
 * The demo page's elements and its small DOM helpers. Text is only ever set as text nodes
 * (never innerHTML), and nothing is inline, so the page runs under helmet's default CSP.
 */

import { mentionSpans } from '../../events/mentions.js';
import { ApiError } from '../trackcomments-client.js';

const TOAST_MS = 8000;
const ERROR_MS = 6000;

function byTestId<T extends HTMLElement = HTMLElement>(testId: string): T {
  const node = document.querySelector<T>(`[data-testid="${testId}"]`);
  if (!node) throw new Error(`demo page: no [data-testid="${testId}"] in index.html`);
  return node;
}

export const ui = {
  userSelect: byTestId<HTMLSelectElement>('user-select'),
  roles: byTestId('me-roles'),
  trackSelect: byTestId<HTMLSelectElement>('track-select'),
  conn: byTestId('connection-state'),
  play: byTestId<HTMLButtonElement>('play-button'),
  position: byTestId('position'),
  trackTitle: byTestId('track-title'),
  timeline: byTestId('timeline'),
  progress: byTestId('timeline-progress'),
  markers: byTestId('timeline-markers'),
  replyBanner: byTestId('reply-banner'),
  replyTo: byTestId('reply-to'),
  replyCancel: byTestId<HTMLButtonElement>('reply-cancel'),
  form: byTestId<HTMLFormElement>('comment-form'),
  composePosition: byTestId('compose-position'),
  input: byTestId<HTMLInputElement>('comment-input'),
  submit: byTestId<HTMLButtonElement>('comment-submit'),
  typing: byTestId('typing-indicator'),
  error: byTestId('error'),
  empty: byTestId('comments-empty'),
  list: byTestId('comment-list'),
  toasts: byTestId('toasts'),
};

export function formatTime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** Content as text nodes, @mentions highlighted by the parser the server uses. */
export function renderContent(target: HTMLElement, text: string): void {
  target.textContent = '';
  let last = 0;
  for (const { start, end } of mentionSpans(text)) {
    if (start > last) target.append(text.slice(last, start));
    const span = document.createElement('span');
    span.className = 'mention';
    span.textContent = text.slice(start, end);
    target.append(span);
    last = end;
  }
  if (last < text.length) target.append(text.slice(last));
}

/** `testid`, `text` and `className` are set as such; any other prop as an attribute. */
export function make<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Record<string, string> = {},
  children: (Node | string)[] = [],
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'testid') node.dataset.testid = v;
    else if (k === 'text') node.textContent = v;
    else if (k === 'className') node.className = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

let errorTimer: ReturnType<typeof setTimeout> | undefined;

export function showError(err: unknown): void {
  const msg =
    err instanceof ApiError
      ? `${err.message} (${err.code})`
      : err instanceof Error
        ? err.message
        : String(err);
  ui.error.textContent = msg;
  ui.error.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => (ui.error.hidden = true), ERROR_MS);
}

export function toast(text: string, onClick?: () => void): void {
  const node = make('div', { className: 'toast', testid: 'toast', role: 'status', text });
  if (onClick) {
    node.classList.add('clickable');
    node.addEventListener('click', () => {
      onClick();
      node.remove();
    });
  }
  ui.toasts.append(node);
  setTimeout(() => node.remove(), TOAST_MS);
}
