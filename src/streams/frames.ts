import { createEventBuffer } from 'better-sse';

/**
 * SSE frame encoding. better-sse's EventBuffer writes the spec's field syntax;
 * we only choose the sanitizer and serializer:
 *  - CR/LF inside a field value would end the line early and let the rest be
 *    parsed as another field. In JSON text CR/LF can only be insignificant
 *    whitespace (inside strings they are escaped), and ids and event names
 *    never contain them, so replacing them with a space is lossless here.
 *  - A leading space gives the `id: 42` / `: ping` form shown in the
 *    contract (parsers strip exactly one leading space).
 *  - Data arrives as JSON text already (serialised once by the publisher).
 */
const sanitizeField = (value: string): string => ' ' + value.replace(/\r\n|\r|\n/g, ' ');

const buffer = createEventBuffer({
  serializer: (data: unknown) => (typeof data === 'string' ? data : JSON.stringify(data)),
  sanitizer: sanitizeField,
});

function take(): string {
  const text = buffer.read();
  buffer.clear();
  return text;
}

/** The text of one event: `id:` (stored events only), `event:`, `data:`, blank line. */
export function frameText(id: number | null, type: string, json: string): string {
  if (id !== null) buffer.id(String(id));
  buffer.event(type).data(json).dispatch();
  return take();
}

export function encodeFrame(id: number | null, type: string, json: string): Buffer {
  return Buffer.from(frameText(id, type, json), 'utf8');
}

export function retryText(ms: number): string {
  buffer.retry(ms).dispatch();
  return take();
}

/** A comment line that keeps proxies from timing the connection out. */
export const PING_FRAME: Buffer = (() => {
  buffer.comment('ping').dispatch();
  return Buffer.from(take(), 'utf8');
})();
