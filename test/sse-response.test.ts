/**
 * The HTTP side of a stream (src/streams/sse-response.ts) on a real node:http server:
 * refusals, HEAD, the stream's head and first bytes, and the hand-over of the connection.
 */
import http from 'node:http';
import {
  answerHead,
  connectedFrame,
  refuse,
  releaseHead,
  startStream,
} from '../src/streams/sse-response';
import { useHandlerServer } from './support/handler-server';

const srv = useHandlerServer();

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${srv.base}/s`, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const EXTRA = { 'X-Request-Id': 'r1', Vary: ['Origin', 'Cookie'] };

test('refuse answers with the JSON error body, Retry-After and the extra headers', async () => {
  srv.handler = (_req, res) => refuse(res, 429, 'too_many_streams', 'Close one first.', 5, EXTRA);
  const { status, headers, body } = await request();
  expect(status).toBe(429);
  expect(JSON.parse(body)).toEqual({
    error: { code: 'too_many_streams', message: 'Close one first.' },
  });
  expect(headers['content-type']).toBe('application/json; charset=utf-8');
  expect(headers['retry-after']).toBe('5');
  expect(headers['cache-control']).toBe('no-store');
  expect(headers['x-request-id']).toBe('r1');
  expect(headers.vary).toBe('Origin, Cookie');
});

test('refuse after the head is out only ends the response', async () => {
  srv.handler = (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write('partial');
    refuse(res, 503, 'replica_full', 'Full.', 5);
  };
  const { status, body } = await request();
  expect(status).toBe(200);
  expect(body).toBe('partial');
});

test('HEAD gets the stream headers and no body', async () => {
  srv.handler = (_req, res) => answerHead(res, EXTRA);
  const { status, headers, body } = await request('HEAD');
  expect(status).toBe(200);
  expect(headers['content-type']).toBe('text/event-stream; charset=utf-8');
  expect(headers['cache-control']).toBe('no-cache');
  expect(headers['x-accel-buffering']).toBe('no');
  expect(headers['x-request-id']).toBe('r1');
  expect(body).toBe('');
});

test('startStream sends the head, retry and first text unchunked, then hands the socket over', async () => {
  let handedOver = false;
  srv.handler = async (req, res) => {
    res.on('close', () => (handedOver = true));
    await Promise.resolve(); // as after auth: Node has completed the bodiless request
    startStream(req, res, req.socket, EXTRA, 2000, 'event: hello\ndata: {}\n\n');
    expect(handedOver).toBe(true); // the HTTP layer sees the response as over
    req.socket.write('event: later\ndata: {}\n\n');
    req.socket.end();
  };
  const { status, headers, body } = await request();
  expect(status).toBe(200);
  expect(headers['content-type']).toBe('text/event-stream; charset=utf-8');
  expect(headers['transfer-encoding']).toBeUndefined();
  expect(headers['content-length']).toBeUndefined();
  expect(headers.connection).toBe('close');
  expect(headers['x-request-id']).toBe('r1');
  expect(body).toBe('retry: 2000\n\nevent: hello\ndata: {}\n\nevent: later\ndata: {}\n\n');
});

test('releaseHead swaps a sent head text for a shared constant, and leaves an unsent one', () => {
  const sent = { _headerSent: true, _header: 'HTTP/1.1 200 OK\r\nX-Long: ...\r\n\r\n' };
  releaseHead(sent as unknown as http.ServerResponse);
  expect(sent._header).toBe('HTTP/1.1 200 OK\r\n\r\n');
  const unsent = { _headerSent: false, _header: 'HTTP/1.1 200 OK\r\nX: y\r\n\r\n' };
  releaseHead(unsent as unknown as http.ServerResponse);
  expect(unsent._header).toBe('HTTP/1.1 200 OK\r\nX: y\r\n\r\n');
});

test('connectedFrame: the `connected` event, without id, a fresh connection_id each time', () => {
  const data = (frame: string) =>
    JSON.parse(/^data: (.*)$/m.exec(frame)![1]!) as Record<string, unknown>;
  const a = connectedFrame('track', 't1');
  const b = connectedFrame('user', null);
  expect(a).toMatch(/^event: connected\n/);
  expect(a).not.toMatch(/^id:/m);
  expect(data(a)).toMatchObject({
    type: 'connected',
    track_id: 't1',
    message: 'Connected to track t1',
  });
  expect(data(b)).toMatchObject({
    type: 'connected',
    track_id: null,
    message: 'Connected to your personal stream',
  });
  expect(data(a).connection_id).not.toBe(data(b).connection_id);
});
