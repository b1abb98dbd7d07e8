import http from 'node:http';

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON, or undefined. */
  json: unknown;
}

/**
 * Where a request goes: a URL, or a loopback port and a path sent exactly as written (a URL
 * string is normalized by the WHATWG parser first: `/a/../b` -> `/b`, `%2e` counts as a dot).
 */
export type HttpTarget = string | { port: number; path: string };

/**
 * One request on its own connection (no keep-alive: replicas die and come
 * back on the same port, and a pooled socket would outlive them).
 */
export function httpRequest(
  url: HttpTarget,
  method: string,
  opts: {
    headers?: Record<string, string>;
    /** Sent as is: a Buffer carries bytes a string could not (text that is not UTF-8). */
    body?: string | Buffer;
    localAddress?: string;
    timeoutMs?: number;
  } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const where = typeof url === 'string' ? url : `:${url.port}${url.path}`;
    const options: http.RequestOptions = {
      method,
      headers: opts.headers,
      agent: false,
      localAddress: opts.localAddress,
      timeout: opts.timeoutMs ?? 30000,
    };
    const onResponse = (res: http.IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    };
    // An options object keeps its path as written; a URL string is normalized first.
    const req =
      typeof url === 'string'
        ? http.request(url, options, onResponse)
        : http.request(
            { ...options, host: '127.0.0.1', port: url.port, path: url.path },
            onResponse,
          );
    req.on('timeout', () => req.destroy(new Error(`${method} ${where}: timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * `httpRequest` with a JSON body (Content-Type set unless given) and a bearer
 * token, the shape every test env's API helper takes.
 */
export function jsonRequest(
  url: string,
  method: string,
  opts: {
    token?: string;
    body?: unknown;
    headers?: Record<string, string>;
    localAddress?: string;
    timeoutMs?: number;
  } = {},
): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.Authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['Content-Type'] ??= 'application/json';
  }
  return httpRequest(url, method, {
    headers,
    body,
    localAddress: opts.localAddress,
    timeoutMs: opts.timeoutMs,
  });
}
