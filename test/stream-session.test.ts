import type { StreamChannel } from '../src/streams/channel';
import { StreamSession } from '../src/streams/session';
import { FakeSocket, asSocket } from './streams-fakes';

/** A channel reduced to what a session uses: its live set and the host's buffer limit. */
function fakeChannel(maxBufferBytes = 100) {
  const dropped: StreamSession[] = [];
  const channel = {
    stream: 'track:t1',
    live: new Set<StreamSession>(),
    host: { maxBufferBytes, dropSlow: (s: StreamSession) => dropped.push(s) },
  };
  return { channel, asChannel: channel as unknown as StreamChannel, dropped };
}

function session(maxBufferBytes?: number) {
  const socket = new FakeSocket();
  const { channel, asChannel, dropped } = fakeChannel(maxBufferBytes);
  const s = new StreamSession(asSocket(socket), asChannel, 7);
  channel.live.add(s);
  return { s, socket, channel, dropped };
}

describe('StreamSession', () => {
  test('writes to its socket while the client keeps up', () => {
    const { s, socket, dropped } = session();
    expect(s.write('a')).toBe(true);
    expect(s.write(Buffer.from('b'))).toBe(true);
    expect(socket.written).toEqual(['a', 'b']);
    expect(dropped).toEqual([]);
  });

  test('a client with more unsent bytes than the limit is handed to dropSlow, not written to', () => {
    const { s, socket, dropped } = session(100);
    socket.writableLength = 100;
    expect(s.write('at the limit')).toBe(true);
    socket.writableLength = 101;
    expect(s.write('over it')).toBe(false);
    expect(socket.written).toEqual(['at the limit']);
    expect(dropped).toEqual([s]);
  });

  test('an ended session writes nothing', () => {
    const { s, socket } = session();
    s.ended = true;
    expect(s.write('x')).toBe(false);
    expect(socket.written).toEqual([]);
  });

  test('the greeting is written once, when asked', () => {
    const { s, socket } = session();
    s.writeGreeting();
    expect(socket.written).toEqual([]);
    s.greeting = 'event: connected\n\n';
    s.writeGreeting();
    s.writeGreeting();
    expect(socket.written).toEqual(['event: connected\n\n']);
    expect(s.greeting).toBeNull();
  });

  test('end leaves the live set and closes the socket once the written bytes are out', () => {
    const { s, socket, channel } = session();
    s.end();
    expect(s.ended).toBe(true);
    expect(channel.live.has(s)).toBe(false);
    expect(socket.endCalls).toBe(1);
    expect(socket.destroyed).toBe(false);
    socket.emit('finish');
    expect(socket.destroyed).toBe(true);
    s.end();
    expect(socket.endCalls).toBe(1);
  });

  test('end destroys at once when everything was already written', () => {
    const { s, socket } = session();
    socket.writableFinished = true;
    s.end();
    expect(socket.destroyed).toBe(true);
  });

  test('destroy stops writes and destroys the socket', () => {
    const { s, socket } = session();
    s.destroy();
    expect(socket.destroyed).toBe(true);
    expect(s.write('x')).toBe(false);
  });

  test('starts unscheduled in the expiry wheel, at position 0, with no greeting', () => {
    const { s } = session();
    expect([s.wheelDue, s.wheelNext, s.wheelPrev]).toEqual([-1, null, null]);
    expect([s.lastSentSeq, s.resumed, s.greeting, s.userId]).toEqual([0, false, null, 7]);
  });
});
