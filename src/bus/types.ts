import type { BusMessage } from '../events/types';

/**
 * Cross-replica transport (Centrifuge's "Broker" without history: history is
 * the event log). One handler per replica (the stream hub); channels are
 * per stream and subscribed only while this replica has local subscribers.
 */
export interface Bus {
  /** Publishes to the stream's channel. Rejects if the transport is down. */
  publish(message: BusMessage): Promise<void>;
  /** Starts receiving `stream`'s messages. Idempotent. */
  subscribe(stream: string): Promise<void>;
  /** Stops receiving `stream`'s messages. Idempotent. */
  unsubscribe(stream: string): Promise<void>;
  /** The single receiver of every message on subscribed channels. */
  onMessage(handler: (message: BusMessage) => void): void;
  /**
   * Called after the transport came back from an outage (messages may have
   * been lost meanwhile): the hub catches its open streams up from the log.
   */
  onReconnect(handler: () => void): void;
  /** true when the transport answers (for /readyz). */
  isHealthy(): Promise<boolean>;
  close(): Promise<void>;
}
