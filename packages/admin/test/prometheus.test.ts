import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import t from 'tap';
import { StatsRegistry } from '@metrics-distributor/core';
import { escapeLabel, formatValue, promName, renderPrometheus, type PrometheusInputs, type SinkStatus } from '../src/index.js';

const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));

/** A registry shaped like the real server's: every component and self-metric name the project uses. */
export function realisticRegistry(): StatsRegistry {
  const stats = new StatsRegistry();
  const udp = stats.component('statsd-udp');
  udp.packets = 1000;
  udp.bytes = 64_000;
  udp.received = 5000;
  udp.parsed = 4990;
  udp.bad = 10;
  udp.drop('truncated', 2);
  udp.drop('kernel_rcvbuf', 7);
  stats.component('statsd-tcp').drop('line_too_long', 1);
  const http = stats.component('http');
  http.received = 300;
  http.count('late_lines', 3);
  http.count('msg_count_mismatch', 1);
  http.drop('unauthorized', 2);
  stats.component('http-statsd').received = 12;
  const agg = stats.component('aggregator');
  agg.gauge('contexts', 1234);
  agg.gauge('flush_duration_ms', 12.5);
  agg.drop('max_contexts', 40);
  const dd = stats.component('sink-datadog');
  dd.received = 10;
  dd.sent = 8;
  dd.failed = 1;
  dd.packets = 30;
  dd.bytes = 123_456;
  dd.drop('queue_full', 1);
  dd.gauge('queue_depth', 2);
  dd.gauge('retry_buffer_bytes', 2048);
  dd.gauge('retry_buffer_payloads', 1);
  stats.component('sink-datadog-series').received = 900;
  stats.component('sink-datadog-http-2xx').received = 30;
  stats.component('sink-datadog-retry').received = 2;
  const proc = stats.component('process');
  proc.gauge('event_loop_delay_max_ms', 3.25);
  proc.gauge('event_loop_delay_p99_ms', 1.5);
  proc.gauge('rss_bytes', 90_000_000);
  proc.gauge('heap_used_bytes', 40_000_000);
  stats.component('workers').count('worker_deaths', 1);
  stats.component('admin').received = 5;
  return stats;
}

const SINK: SinkStatus = {
  name: 'datadog',
  queueDepth: 2,
  maxBatches: 16,
  retryBufferBytes: 2048,
  retryBufferMaxBytes: 8 * 1024 * 1024,
  lastSuccessMs: 1_700_000_000_000,
  lastError: { code: 'MD_ERR_SINK_EXPORT', message: 'HTTP 503', atMs: 1_700_000_001_000 },
};

export function inputs(stats: StatsRegistry, sinks: SinkStatus[] = [SINK]): PrometheusInputs {
  return {
    stats,
    version: '1.2.3',
    startedAtMs: 1_700_000_000_000,
    nowMs: 1_700_000_090_000,
    readiness: { ready: false, problems: ['sink datadog: queue full'] },
    sinks,
    liveContexts: 1234,
    process: { eventLoopDelayP99Ms: 1.5, eventLoopDelayMaxMs: 3.25, rssBytes: 90_000_000, heapUsedBytes: 40_000_000 },
  };
}

function lines(text: string): string[] {
  return text.split('\n');
}

t.test('Vector-spec names, labels and values for every field', async (t) => {
  const { text, conflicts } = renderPrometheus(inputs(realisticRegistry()));
  t.equal(conflicts, 0);
  const l = lines(text);
  const has = (line: string): void => void t.ok(l.includes(line), line);
  has('metrics_distributor_component_received_events_total{component_id="statsd-udp"} 5000');
  has('metrics_distributor_component_received_packets_total{component_id="statsd-udp"} 1000');
  has('metrics_distributor_component_received_bytes_total{component_id="statsd-udp"} 64000');
  has('metrics_distributor_component_parsed_events_total{component_id="statsd-udp"} 4990');
  has('metrics_distributor_component_errors_total{component_id="statsd-udp",error_type="parser_failed",stage="processing"} 10');
  has('metrics_distributor_component_discarded_events_total{component_id="statsd-udp",reason="kernel_rcvbuf"} 7');
  has('metrics_distributor_component_discarded_events_total{component_id="aggregator",reason="max_contexts"} 40');
  has('metrics_distributor_component_sent_events_total{component_id="sink-datadog"} 8');
  has('metrics_distributor_component_errors_total{component_id="sink-datadog",error_type="request_failed",stage="sending"} 1');
  has('metrics_distributor_component_sent_payloads_total{component_id="sink-datadog"} 30');
  has('metrics_distributor_component_sent_bytes_total{component_id="sink-datadog"} 123456');
  has('metrics_distributor_late_lines_total{component_id="http"} 3');
  has('metrics_distributor_worker_deaths_total{component_id="workers"} 1');
  has('metrics_distributor_queue_depth{component_id="sink-datadog"} 2');
  has('metrics_distributor_flush_duration_seconds{component_id="aggregator"} 0.0125');
  has('metrics_distributor_event_loop_delay_p99_seconds{component_id="process"} 0.0015');
  has('metrics_distributor_build_info{version="1.2.3"} 1');
  has('process_start_time_seconds 1700000000');
  has('metrics_distributor_uptime_seconds 90');
  has('metrics_distributor_ready 0');
  has('metrics_distributor_live_contexts 1234');
  has('metrics_distributor_sink_retry_buffer_max_bytes{component_id="sink-datadog"} 8388608');
  has('metrics_distributor_sink_last_error_timestamp_seconds{component_id="sink-datadog"} 1700000001');
  has('# TYPE metrics_distributor_component_received_events_total counter');
  has('# TYPE metrics_distributor_queue_depth gauge');
  // Each family once, its lines together.
  const types = l.filter((x) => x.startsWith('# TYPE ')).map((x) => x.split(' ')[2]);
  t.equal(new Set(types).size, types.length, 'no family declared twice');
  let current = '';
  for (const x of l) {
    if (x.startsWith('# TYPE ')) current = x.split(' ')[2]!;
    else if (x !== '' && !x.startsWith('#')) t.ok(x.startsWith(current), `${x} under ${current}`);
  }
  t.ok(text.endsWith('\n'));
});

t.test('promtool check metrics passes', { skip: PROMTOOL === undefined ? 'promtool not installed (apt-get install -y prometheus)' : false }, async (t) => {
  const weird = realisticRegistry();
  const odd = weird.component('odd "component"\\\nid');
  odd.received = 1;
  odd.gauge('someCamelGauge', 2);
  odd.gauge('ratio_total', 0.5);
  odd.count('9lives', 1);
  odd.gauge('nan_gauge', NaN);
  odd.gauge('inf_gauge', Infinity);
  for (const [name, inp] of [
    ['realistic', inputs(realisticRegistry())],
    ['edge cases', inputs(weird)],
    ['empty', inputs(new StatsRegistry(), [])],
  ] as const) {
    const { text } = renderPrometheus(inp);
    const r = spawnSync(PROMTOOL!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    t.equal(r.status, 0, `${name}: exit 0`);
    t.equal(`${r.stdout}${r.stderr}`.trim(), '', `${name}: nothing to say`);
  }
});

t.test('a component counter or gauge that takes a reserved name is left out and counted', async (t) => {
  const stats = new StatsRegistry();
  stats.component('x').gauge('ready', 5);
  stats.component('x').count('component_sent_events', 5);
  stats.component('y').gauge('late_lines_total', 1);
  stats.component('y').count('late_lines', 2);
  const { text, conflicts } = renderPrometheus(inputs(stats, []));
  t.equal(conflicts, 2, 'the two reserved names');
  t.match(text, 'metrics_distributor_ready 0\n');
  t.notMatch(text, 'metrics_distributor_ready{component_id="x"}');
  t.match(text, 'metrics_distributor_admin_name_conflicts 2\n');
  t.match(text, 'metrics_distributor_late_lines_total{component_id="y"} 2\n');
  t.match(text, 'metrics_distributor_late_lines{component_id="y"} 1\n', 'a gauge never ends in _total');
});

t.test('name, label and value helpers', async (t) => {
  t.same(promName('flush_duration_ms', 'gauge'), { name: 'flush_duration_seconds', scale: 0.001 });
  t.same(promName('queue_depth', 'gauge'), { name: 'queue_depth', scale: 1 });
  t.same(promName('retryBufferBytes', 'gauge'), { name: 'retry_buffer_bytes', scale: 1 });
  t.same(promName('a.b-c', 'gauge'), { name: 'a_b_c', scale: 1 });
  t.same(promName('9x', 'gauge'), { name: '9x', scale: 1 });
  t.same(promName('x_total', 'counter'), { name: 'x', scale: 1 });
  t.same(promName('x_gauge_y', 'gauge'), { name: 'x_y', scale: 1 });
  t.same(promName('x_gauge', 'counter'), { name: 'x_gauge', scale: 1 });
  t.same(promName('total', 'counter'), { name: 'unnamed', scale: 1 });
  t.same(promName('_ms', 'counter'), { name: 'seconds', scale: 0.001 });
  t.equal(escapeLabel('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  t.equal(formatValue(NaN), 'NaN');
  t.equal(formatValue(Infinity), '+Inf');
  t.equal(formatValue(-Infinity), '-Inf');
  t.equal(formatValue(0.1), '0.1');
  t.equal(formatValue(1e21), '1e+21');
});

t.test('render time for 50 components', async (t) => {
  const stats = new StatsRegistry();
  for (let i = 0; i < 50; i++) {
    const s = stats.component(`component-${i}`);
    s.received = i * 1000;
    s.sent = i;
    s.bytes = i * 64;
    s.drop('queue_full', i);
    s.drop('internal_error', 1);
    s.count('late_lines', i);
    s.gauge('queue_depth', i);
    s.gauge('flush_duration_ms', i / 3);
  }
  const inp = inputs(stats);
  for (let i = 0; i < 50; i++) renderPrometheus(inp);
  const n = 500;
  const t0 = process.hrtime.bigint();
  let size = 0;
  for (let i = 0; i < n; i++) size = renderPrometheus(inp).text.length;
  const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
  t.comment(`/metrics render, 50 components (${size} bytes): ${us.toFixed(0)} µs per scrape`);
  t.ok(us < 20_000, 'well under 20 ms even on a loaded machine');
});

t.test('zero counters other than received are left out until they count', async (t) => {
  const stats = new StatsRegistry();
  stats.component('statsd-udp').received = 3;
  stats.component('idle');
  const { text } = renderPrometheus(inputs(stats, []));
  t.match(text, 'metrics_distributor_component_received_events_total{component_id="idle"} 0\n');
  t.notMatch(text, 'sent_events_total{component_id="statsd-udp"}');
  t.notMatch(text, 'errors_total{');
  stats.component('statsd-udp').bad = 1;
  t.match(renderPrometheus(inputs(stats, [])).text, 'metrics_distributor_component_errors_total{component_id="statsd-udp",error_type="parser_failed",stage="processing"} 1\n');
});
