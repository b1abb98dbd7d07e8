import client from 'prom-client';

/**
 * Prometheus metrics of one replica. A fresh registry per app instance so
 * tests can build several apps in one process.
 */
export class Metrics {
  readonly registry = new client.Registry();

  readonly openStreams = new client.Gauge({
    name: 'trackcomments_open_streams',
    help: 'Open SSE streams on this replica, by kind (track|user)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly eventsPublished = new client.Counter({
    name: 'trackcomments_events_published_total',
    help: 'Events published on the bus by this replica, by type and source (commit|relay)',
    labelNames: ['type', 'source'] as const,
    registers: [this.registry],
  });
  readonly eventsDelivered = new client.Counter({
    name: 'trackcomments_events_delivered_total',
    help: 'Event frames written to SSE subscribers on this replica, by type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly deliveryLag = new client.Histogram({
    name: 'trackcomments_publish_to_delivery_seconds',
    help: 'Time from an event reaching this replica from the bus to its frame being written to local subscribers',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly gapFills = new client.Counter({
    name: 'trackcomments_gap_fills_total',
    help: 'Bus messages that arrived ahead of a missing seq, so the gap was read from the event log',
    registers: [this.registry],
  });
  readonly replays = new client.Counter({
    name: 'trackcomments_replays_total',
    help: 'Stream resumptions served from the event log (Last-Event-ID)',
    registers: [this.registry],
  });
  readonly resets = new client.Counter({
    name: 'trackcomments_resets_total',
    help: 'reset events sent because history no longer covered Last-Event-ID',
    registers: [this.registry],
  });
  readonly slowSubscriberDisconnects = new client.Counter({
    name: 'trackcomments_slow_subscriber_disconnects_total',
    help: 'Subscribers disconnected because their unsent buffer passed the bound',
    registers: [this.registry],
  });
  readonly rateLimited = new client.Counter({
    name: 'trackcomments_rate_limited_total',
    help: 'Requests refused with 429, by limiter',
    labelNames: ['limiter'] as const,
    registers: [this.registry],
  });
  readonly busReconnects = new client.Counter({
    name: 'trackcomments_bus_reconnects_total',
    help: 'Times the bus came back after an outage',
    registers: [this.registry],
  });
  readonly httpDuration = new client.Histogram({
    name: 'trackcomments_http_request_duration_seconds',
    help: 'HTTP request durations by method, route and status (SSE streams excluded)',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'trackcomments_' });
  }
}
