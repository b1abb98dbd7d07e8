import net from 'node:net';

export interface RawRequest {
  method: string;
  /** The request-target exactly as it goes on the wire (already percent-encoded). */
  target: string;
  /** Header lines in order; Host, Content-Length and Connection are added. */
  headers: [string, string][];
  body: Buffer;
}

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** True when the answer was a stream (`text/event-stream`) that was cut after its head. */
  stream: boolean;
}

/**
 * Sends one request byte for byte on its own connection and reads the answer: a test of
 * hostile input must not depend on what an HTTP client library agrees to send. A stream
 * answer is cut once its head is in; any other answer is read until the server closes.
 */
export function rawRequest(port: number, req: RawRequest, timeoutMs = 15000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (err: Error | null, answer?: RawAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(answer!);
    };
    const timer = setTimeout(
      () => finish(new Error(`${req.method} ${req.target}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const tryParse = (ended: boolean) => {
      const all = Buffer.concat(chunks);
      const headEnd = all.indexOf('\r\n\r\n');
      if (headEnd === -1) {
        if (ended) finish(new Error(`${req.method} ${req.target}: closed without an answer`));
        return;
      }
      const [statusLine, ...lines] = all.subarray(0, headEnd).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      const stream = (headers['content-type'] ?? '').startsWith('text/event-stream');
      if (stream || req.method === 'HEAD' || status === 204 || status === 304) {
        finish(null, { status, headers, body: Buffer.alloc(0), stream });
        return;
      }
      const rest = all.subarray(headEnd + 4);
      const length = headers['content-length'];
      if (length !== undefined && rest.length >= Number(length)) {
        finish(null, { status, headers, body: rest.subarray(0, Number(length)), stream });
      } else if (ended) {
        const chunked = /chunked/i.test(headers['transfer-encoding'] ?? '');
        finish(null, { status, headers, body: chunked ? dechunk(rest) : rest, stream });
      }
    };
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      tryParse(false);
    });
    socket.on('end', () => tryParse(true));
    socket.on('close', () => tryParse(true));
    socket.on('error', (err) => {
      // A reset after a complete answer is still that answer.
      if (chunks.length > 0) tryParse(true);
      else finish(err);
    });
    socket.on('connect', () => {
      const head = [`${req.method} ${req.target} HTTP/1.1`, `Host: 127.0.0.1:${port}`];
      for (const [name, value] of req.headers) head.push(`${name}: ${value}`);
      if (req.body.length > 0 || ['POST', 'PUT', 'PATCH'].includes(req.method))
        head.push(`Content-Length: ${req.body.length}`);
      head.push('Connection: close', '', '');
      socket.write(Buffer.concat([Buffer.from(head.join('\r\n'), 'latin1'), req.body]));
    });
  });
}

function dechunk(data: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd === -1) break;
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!(size > 0)) break;
    out.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(out);
}
