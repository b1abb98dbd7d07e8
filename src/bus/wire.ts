import { isEventType, type BusMessage } from '../events/types';

/**
 * Bus wire format, one Redis message per event; the stream is the channel:
 *
 *   <seq or empty>\n<type>\n<data JSON text, verbatim>
 *
 * Only the first two newlines are separators, so `data` may contain anything
 * (it is sliced out, never parsed here). An empty seq means an ephemeral event.
 */

const SEQ_PATTERN = /^(0|[1-9][0-9]{0,15})$/;

export function encodeBusPayload(message: BusMessage): string {
  return `${message.seq === null ? '' : message.seq}\n${message.type}\n${message.data}`;
}

/** The message for `stream`, or null when the payload is not in the wire format. */
export function decodeBusPayload(stream: string, payload: string): BusMessage | null {
  const seqEnd = payload.indexOf('\n');
  if (seqEnd < 0) return null;
  const typeEnd = payload.indexOf('\n', seqEnd + 1);
  if (typeEnd < 0) return null;
  const type = payload.slice(seqEnd + 1, typeEnd);
  if (!isEventType(type)) return null;
  let seq: number | null = null;
  if (seqEnd > 0) {
    const seqText = payload.slice(0, seqEnd);
    if (!SEQ_PATTERN.test(seqText)) return null;
    seq = Number(seqText);
    if (!Number.isSafeInteger(seq)) return null;
  }
  const data = payload.slice(typeEnd + 1);
  if (data.length === 0) return null;
  return { stream, seq, type, data };
}
