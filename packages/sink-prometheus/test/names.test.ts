import t from 'tap';
import {
  escapeHelp,
  escapeLabelValue,
  formatValue,
  negotiate,
  renderTagLabels,
  sanitizeLabelName,
  sanitizeMetricName,
  sketchKey,
  validateBuckets,
  windowTotal,
} from '../src/index.js';
import { point, sketchOf } from './helpers.js';

t.test('metric names are sanitised as statsd_exporter does', async (t) => {
  t.equal(sanitizeMetricName('req.count'), 'req_count');
  t.equal(sanitizeMetricName('api-v2.latency'), 'api_v2_latency');
  t.equal(sanitizeMetricName('a:b'), 'a_b', 'colons are mapped too (reserved for recording rules)');
  t.equal(sanitizeMetricName('9lives'), '_9lives');
  t.equal(sanitizeMetricName('été.temp'), '_t__temp', 'one _ per code point');
  t.equal(sanitizeMetricName('😀x'), '_x', 'astral code point is one character');
  t.equal(sanitizeMetricName(''), '_');
  t.equal(sanitizeMetricName('ok_Name:1'), 'ok_Name_1');
  for (const n of ['a', 'req.count', '9', '..', 'x y', '\n']) t.match(sanitizeMetricName(n), /^[a-zA-Z_][a-zA-Z0-9_]*$/);
});

t.test('label names: no colons, reserved names renamed', async (t) => {
  t.equal(sanitizeLabelName('env'), 'env');
  t.equal(sanitizeLabelName('k8s.pod-name'), 'k8s_pod_name');
  t.equal(sanitizeLabelName('a:b'), 'a_b');
  t.equal(sanitizeLabelName('1x'), '_1x');
  t.equal(sanitizeLabelName('__name__'), 'exported___name__');
  t.equal(sanitizeLabelName('le'), 'exported_le');
  t.equal(sanitizeLabelName('quantile'), 'exported_quantile');
});

t.test('label values and help are escaped', async (t) => {
  t.equal(escapeLabelValue('plain value, with = and }'), 'plain value, with = and }');
  t.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  t.equal(escapeHelp('x\\y\n"z"', false), 'x\\\\y\\n"z"');
  t.equal(escapeHelp('x\\y\n"z"', true), 'x\\\\y\\n\\"z\\"');
});

t.test('values', async (t) => {
  t.equal(formatValue(1), '1');
  t.equal(formatValue(0.1), '0.1');
  t.equal(formatValue(1e-7), '1e-7');
  t.equal(formatValue(Infinity), '+Inf');
  t.equal(formatValue(-Infinity), '-Inf');
  t.equal(formatValue(NaN), 'NaN');
});

t.test('tags to labels', async (t) => {
  t.same(renderTagLabels(['env:prod', 'svc:api']), { labels: 'env="prod",svc="api"', duplicates: 0, bare: 0 });
  t.same(renderTagLabels(['b.x:1', 'a_y:2']), { labels: 'a_y="2",b_x="1"', duplicates: 0, bare: 0 }, 'sorted by sanitised name');
  t.same(renderTagLabels(['bare', 'empty:', ':novalue', 'k:v']), { labels: 'k="v"', duplicates: 0, bare: 3 }, 'bare and empty-valued tags left out');
  t.same(renderTagLabels(['env:a', 'env:b']), { labels: 'env="a"', duplicates: 1, bare: 0 }, 'first wins');
  t.same(renderTagLabels(['a.b:1', 'a_b:2']), { labels: 'a_b="1"', duplicates: 1, bare: 0 });
  t.same(renderTagLabels(['url:http://x/?a="b"']), { labels: 'url="http://x/?a=\\"b\\""', duplicates: 0, bare: 0 }, 'value keeps colons, quotes escaped');
  t.same(renderTagLabels(['le:5']), { labels: 'exported_le="5"', duplicates: 0, bare: 0 });
});

t.test('Accept negotiation', async (t) => {
  const prom242 = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
  t.equal(negotiate(prom242), 'openmetrics');
  t.equal(negotiate(undefined), 'text');
  t.equal(negotiate(''), 'text');
  t.equal(negotiate('*/*'), 'text');
  t.equal(negotiate('text/plain'), 'text');
  t.equal(negotiate('application/openmetrics-text'), 'openmetrics');
  t.equal(negotiate('text/plain;version=0.0.4;q=0.9, application/openmetrics-text;q=0.5'), 'text');
  t.equal(negotiate('application/openmetrics-text;version=2.0.0'), 'text', 'unknown version falls back');
  t.equal(negotiate('application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited'), 'text');
  t.equal(negotiate('application/openmetrics-text;q=0'), 'text');
});

t.test('rate series give back their window total', async (t) => {
  t.equal(windowTotal(point('c', 'rate', 0.3, { interval: 10 })), 3);
  t.equal(windowTotal(point('c', 'rate', 7 / 3, { interval: 3 })), 7);
  t.ok(Math.abs(windowTotal(point('c', 'rate', 1 / 0.3 / 10, { interval: 10 })) - 1 / 0.3) < 1e-12, 'a non-integer total is kept');
  t.equal(windowTotal(point('c', 'count', 12)), 12);
  // Every whole total over typical intervals survives the aggregator's division.
  let bad = 0;
  for (const interval of [1, 3, 7, 10, 15, 60]) for (let n = 0; n < 20000; n++) if (windowTotal(point('c', 'rate', n / interval, { interval })) !== n) bad++;
  t.equal(bad, 0);
});

t.test('sketch keys are the agent sketch keys', async (t) => {
  for (const v of [0.001, 0.1, 1, 5, 42, 1234.5, 1e6, -3, 0]) t.equal(sketchKey(v), sketchOf([v]).keys[0], `${v}`);
  t.equal(sketchKey(Infinity), 32767);
  t.equal(sketchKey(-Infinity), -32767);
});

t.test('bucket validation', async (t) => {
  t.same(validateBuckets([0.1, 1]), [0.1, 1]);
  t.throws(() => validateBuckets([]), { code: 'MD_ERR_CONFIG_INVALID' });
  t.throws(() => validateBuckets([1, 1]), { code: 'MD_ERR_CONFIG_INVALID' });
  t.throws(() => validateBuckets([1, Infinity]), { code: 'MD_ERR_CONFIG_INVALID' });
});
