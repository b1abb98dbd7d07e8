import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';

/** The node:http server around `handler`, with the slow-client and keep-alive timeouts. */
export function createHttpServer(
  handler: http.RequestListener,
  opts: {
    requestTimeoutMs: number;
    /** Answers requests Node could not parse (or that timed out) before the handler saw them. */
    onClientError: (err: Error, socket: Duplex) => void;
  },
): http.Server {
  // Slow clients (contract section 7): a request's headers and body must arrive within
  // REQUEST_TIMEOUT_MS (checked at least once a second), else 408 and the connection closes.
  // Node times a request from its first byte to its last, not to the end of the answer, so an
  // open stream (its GET complete, its connection then taken over by the hub) is never cut.
  const requestTimeout = opts.requestTimeoutMs;
  const server = http.createServer(
    {
      requestTimeout,
      headersTimeout: requestTimeout,
      connectionsCheckingInterval: Math.min(1000, requestTimeout),
    },
    handler,
  );
  server.on('clientError', opts.onClientError);
  // Keep-alive a bit above nginx's.
  server.keepAliveTimeout = 65000;
  return server;
}

/** Listens on `port`/`host`; resolves with the bound address, rejects if binding fails. */
export async function listen(
  server: http.Server,
  port: number,
  host: string,
): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server.address() as AddressInfo;
}
