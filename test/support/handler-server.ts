import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => unknown;

/** A real node:http server whose handler each test sets: for tests of the HTTP side of a stream. */
export interface HandlerServer {
  server: http.Server;
  /** `http://127.0.0.1:<port>`, once `beforeAll` has run. */
  base: string;
  handler: Handler;
}

/** Starts a HandlerServer before the file's tests and closes it (and its connections) after. */
export function useHandlerServer(): HandlerServer {
  const srv: HandlerServer = {
    server: http.createServer((req, res) => void srv.handler(req, res)),
    base: '',
    handler: () => undefined,
  };
  beforeAll(async () => {
    await new Promise<void>((resolve) => srv.server.listen(0, '127.0.0.1', resolve));
    srv.base = `http://127.0.0.1:${(srv.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    srv.server.closeAllConnections();
    await new Promise<void>((resolve) => srv.server.close(() => resolve()));
  });
  return srv;
}
