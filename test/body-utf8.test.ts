/**
 * The body parsers' UTF-8 check (contract section 7: text is well-formed, otherwise 400), for
 * every input: a body is refused exactly when the bytes it stands for are not UTF-8, as a
 * strict decoder reads them. End to end, on both request paths: test/hostile-input.test.ts.
 */
import fc from 'fast-check';
import { formBodyBytes, refuseNonUtf8Form, refuseNonUtf8Json } from '../src/http/validation';

const strictDecoder = new TextDecoder('utf-8', { fatal: true });
const isStrictUtf8 = (bytes: Uint8Array): boolean => {
  try {
    strictDecoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
};
const refuses = (check: () => void): boolean => {
  try {
    check();
    return false;
  } catch (err) {
    expect(err).toMatchObject({ status: 400, code: 'invalid_input' });
    return true;
  }
};

/** Bytes biased towards UTF-8's edges: ASCII, lead and continuation bytes, and valid text. */
const bytesArb = fc
  .array(
    fc.oneof(
      fc.integer({ min: 0, max: 0x7f }),
      fc.integer({ min: 0x80, max: 0xff }),
      fc.constantFrom(0xc0, 0xc2, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0x80, 0xbf),
    ),
    { maxLength: 24 },
  )
  .map((a) => Uint8Array.from(a));
const mixedArb = fc.oneof(
  bytesArb,
  fc.string({ unit: 'grapheme', maxLength: 12 }).map((s) => new Uint8Array(Buffer.from(s))),
);

/** Each byte percent-encoded, or sent as is when it is a plain ASCII letter or digit. */
const formEncode = (bytes: Uint8Array, escapeAll: boolean): Buffer =>
  Buffer.from(
    Array.from(bytes, (b) =>
      !escapeAll && /[A-Za-z0-9]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).padStart(2, '0')}`,
    ).join(''),
    'latin1',
  );

test('a JSON body is refused exactly when its bytes are not UTF-8', () => {
  fc.assert(
    fc.property(mixedArb, (bytes) => {
      const body = Buffer.from(bytes);
      expect(refuses(() => refuseNonUtf8Json(null, null, body, 'utf-8'))).toBe(
        !isStrictUtf8(bytes),
      );
    }),
  );
  // Other charsets are decoded by their own decoder; the field validation sees what it made.
  expect(refuses(() => refuseNonUtf8Json(null, null, Buffer.from([0xff]), 'utf-16le'))).toBe(false);
});

test('a form is refused exactly when the bytes its escapes stand for are not UTF-8', () => {
  fc.assert(
    fc.property(mixedArb, fc.boolean(), (bytes, escapeAll) => {
      const body = Buffer.concat([Buffer.from('content='), formEncode(bytes, escapeAll)]);
      expect(refuses(() => refuseNonUtf8Form(null, null, body))).toBe(!isStrictUtf8(bytes));
    }),
  );
  // Raw bytes (not escaped) count as well.
  expect(refuses(() => refuseNonUtf8Form(null, null, Buffer.from([0x61, 0xed, 0xa0, 0x80])))).toBe(
    true,
  );
});

test('formBodyBytes decodes valid escapes and keeps everything else as sent', () => {
  expect(formBodyBytes(Buffer.from('a=%41%2f%2F+b&c=%zz%4'))).toEqual(
    Buffer.from('a=A//+b&c=%zz%4'),
  );
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 12 }), (text) => {
      expect(formBodyBytes(Buffer.from(encodeURIComponent(text)))).toEqual(Buffer.from(text));
    }),
  );
});
