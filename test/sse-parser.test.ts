import { SseParser, type SseBlock } from './support/sse-parser';

function parse(chunks: string[]) {
  const events: SseBlock[] = [];
  const comments: string[] = [];
  const retries: number[] = [];
  const parser = new SseParser({
    onEvent: (block) => events.push(block),
    onComment: (text) => comments.push(text),
    onRetry: (ms) => retries.push(ms),
  });
  for (const chunk of chunks) parser.push(chunk);
  return { events, comments, retries, lastEventId: parser.lastEventId };
}

const STREAM =
  'retry: 1500\n\nevent: connected\ndata: {"a":1}\n\n: ping\n\nid: 7\nevent: new_comment\ndata: x\ndata: y\n\n';

test('reads events, comments and retry hints, with multi-line data joined by LF', () => {
  expect(parse([STREAM])).toEqual({
    events: [
      { id: undefined, event: 'connected', data: '{"a":1}' },
      { id: '7', event: 'new_comment', data: 'x\ny' },
    ],
    comments: ['ping'],
    retries: [1500],
    lastEventId: '7',
  });
});

test('gives the same result whatever the chunks and line endings (CRLF split across chunks)', () => {
  const whole = parse([STREAM]);
  for (const text of [STREAM, STREAM.replaceAll('\n', '\r\n'), STREAM.replaceAll('\n', '\r')]) {
    for (let cut = 1; cut < text.length; cut++) {
      // A CR that ends the input may be half of a CRLF: the next byte (here a LF) settles it.
      expect(parse([text.slice(0, cut), text.slice(cut), '\n'])).toEqual(whole);
    }
  }
});

test('follows the spec: no event without data, id kept, unknown fields and bad retry ignored', () => {
  const got = parse(['id: 3\n\nevent: x\nfoo: bar\nretry: 1s\ndata\n\ndata:no-space\n\n']);
  expect(got).toEqual({
    events: [
      { id: undefined, event: 'x', data: '' },
      { id: undefined, event: 'message', data: 'no-space' },
    ],
    comments: [],
    retries: [],
    lastEventId: '3',
  });
});

test('an unfinished block is not dispatched', () => {
  expect(parse(['event: x\ndata: 1\n']).events).toEqual([]);
});
