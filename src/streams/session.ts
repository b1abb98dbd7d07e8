import type { Socket } from 'node:net';
import type { StreamChannel } from './channel';
import type { WheelLinks } from './expiry-wheel';
import type { RingSlot } from './heartbeat-ring';

/** What a session needs of its connection (a net.Socket; fakes in unit tests). */
export type SessionSocket = Pick<
  Socket,
  'write' | 'end' | 'destroy' | 'once' | 'on' | 'off' | 'writableLength' | 'writableFinished'
>;

/**
 * One open SSE connection (centrifuge's client, better-sse's session): its socket, how far it
 * has got (`lastSentSeq`) and whether it may still be written to. Kept deliberately small (no
 * closures, no timers, behaviour on the prototype): the hub holds thousands of these.
 */
export class StreamSession implements WheelLinks<StreamSession>, RingSlot {
  /** Highest id written on this connection: ids are strictly increasing per connection. */
  lastSentSeq = 0;
  /** Resumed with a valid Last-Event-ID: the join must send the log tail first. */
  resumed = false;
  /** No more writes (ended, destroyed or dropped). */
  ended = false;
  /**
   * What to write when it joins the live set: a fresh session's `connected`, or a `reset`.
   * Written then, every event committed after the client saw it reaches the client.
   */
  greeting: string | null = null;
  /** Its place in the hub's token-expiry wheel. */
  wheelNext: StreamSession | null = null;
  wheelPrev: StreamSession | null = null;
  wheelDue = -1;
  /** Its group in the hub's heartbeat ring (-1 while not registered). */
  heartbeatSlot = -1;

  constructor(
    readonly socket: SessionSocket,
    readonly channel: StreamChannel,
    readonly userId: number,
  ) {}

  /** Writes unless the client has fallen too far behind, in which case it is cut off. */
  write(data: Buffer | string): boolean {
    if (this.ended) return false;
    const socket = this.socket;
    if (socket.writableLength > this.channel.host.maxBufferBytes) {
      this.channel.host.dropSlow(this);
      return false;
    }
    socket.write(data);
    return true;
  }

  /** Writes the pending greeting, if any (on joining the live set). */
  writeGreeting(): void {
    if (this.greeting === null) return;
    this.write(this.greeting);
    this.greeting = null;
  }

  /** Graceful close: the end of the body; the socket closes once written. Idempotent. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.channel.live.delete(this);
    // The body ends with the connection: FIN once the written bytes are out, then close.
    const socket = this.socket;
    socket.end();
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  }

  /** Abrupt close (slow client, hub closed): no more writes, the socket goes now. */
  destroy(): void {
    this.ended = true;
    this.socket.destroy();
  }
}
