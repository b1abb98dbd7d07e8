import type { Logger } from 'pino';
import type { BusMessage } from '../events/types';
import type { Bus } from './types';

/**
 * In-process bus for the single-process (embedded) mode. Delivery is
 * asynchronous like a real transport (a handler never runs inside publish),
 * in publish order (microtasks are FIFO).
 */
export class MemoryBus implements Bus {
  private readonly subscribed = new Set<string>();
  private handler: ((message: BusMessage) => void) | null = null;
  private closed = false;
  private readonly logger: Logger | undefined;

  constructor(opts: { logger?: Logger } = {}) {
    this.logger = opts.logger;
  }

  publish(message: BusMessage): Promise<void> {
    if (this.closed) return Promise.reject(new Error('bus is closed'));
    if (!this.subscribed.has(message.stream)) return Promise.resolve();
    // A copy, as a real transport would deliver: the receiver never aliases the publisher's object.
    const delivered: BusMessage = {
      stream: message.stream,
      seq: message.seq,
      type: message.type,
      data: message.data,
    };
    queueMicrotask(() => this.deliver(delivered));
    return Promise.resolve();
  }

  private deliver(message: BusMessage): void {
    // Re-checked: an unsubscribe between publish and delivery stops it, as on Redis.
    if (this.closed || this.handler === null || !this.subscribed.has(message.stream)) return;
    try {
      this.handler(message);
    } catch (err) {
      if (this.logger)
        this.logger.error({ err, stream: message.stream }, 'bus message handler threw');
      else console.error('bus message handler threw', err);
    }
  }

  subscribe(stream: string): Promise<void> {
    if (this.closed) return Promise.reject(new Error('bus is closed'));
    this.subscribed.add(stream);
    return Promise.resolve();
  }

  unsubscribe(stream: string): Promise<void> {
    this.subscribed.delete(stream);
    return Promise.resolve();
  }

  onMessage(handler: (message: BusMessage) => void): void {
    this.handler = handler;
  }

  /** Never fires: an in-process bus has no outages. */
  onReconnect(_handler: () => void): void {}

  isHealthy(): Promise<boolean> {
    return Promise.resolve(!this.closed);
  }

  close(): Promise<void> {
    this.closed = true;
    this.subscribed.clear();
    return Promise.resolve();
  }
}
