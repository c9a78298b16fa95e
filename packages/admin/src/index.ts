/**
 * Public API of @metrics-distributor/admin: the admin listener (health, readiness, Prometheus
 * self-metrics, the status API, the cardinality explorer and the live status page) and the
 * {@link AdminSources} interface it reads everything from.
 */
export { ADMIN_COMPONENT, AdminServer, DEFAULT_ADMIN_PORT } from './server.js';
export type { AdminServerDeps, AdminServerOptions } from './server.js';
export { MAX_EXAMPLES, MAX_TOP } from './sources.js';
export type { AdminSources, ProcessHealth, Readiness, SinkError, SinkStatus, TagCardinality, TopContextsBy, TopContextsEntry, TopContextsQuery, TopContextsReport } from './sources.js';
export { AdminAuth, hostAllowed, hostName, isLoopbackHost, parseBasic, parseCredential } from './auth.js';
export type { AdminCredential } from './auth.js';
export { DEFAULT_EXAMPLES, DEFAULT_TOP, parseContextsQuery } from './contexts.js';
export type { ContextsQueryResult } from './contexts.js';
export { PROMETHEUS_CONTENT_TYPE, escapeLabel, formatValue, promName, renderPrometheus } from './prometheus.js';
export type { FamilyType, PrometheusInputs } from './prometheus.js';
export { DEFAULT_FAILING_AFTER_MS, sinkState } from './status.js';
export type { ComponentReport, SinkReport, SinkState, StatusReport } from './status.js';
export { DEFAULT_RING_SAMPLES, RateRing } from './sampler.js';
export type { DropFigure, RateSeries } from './sampler.js';
export { COUNTER_FIELDS_ADMIN, counterFamily } from './fields.js';
export type { CounterField, FamilyMapping } from './fields.js';
export type { AdminApp } from './routes.js';
export { TrackedSink } from './track.js';
