import t from 'tap';
import { isMdError } from '../../src/errors.js';
import { Template } from '../../src/transform/expand.js';
import { MetricMapper, type MapOutcome } from '../../src/transform/mapper.js';

const sortedTags = (r: MapOutcome) => (typeof r === 'string' ? r : { name: r.name, tags: [...r.tags].sort() });

// The Datadog agent's documented mapper examples (DogStatsD Mapper docs), pasted as a user would.
const AGENT_PROFILES = [
  {
    name: 'airflow',
    prefix: 'airflow.',
    mappings: [
      { match: 'airflow.job.duration_sec.*.*', name: 'airflow.job.duration', tags: { job_type: '$1', job_name: '$2' } },
      { match: 'airflow\\.dag\\.(.*)\\.([^.]*)\\.duration', match_type: 'regex', name: 'airflow.dag.duration', tags: { dag_id: '$1', task_id: '$2' } },
    ],
  },
  {
    name: 'custom',
    prefix: 'custom_metric.',
    mappings: [
      { match: 'custom_metric.process.*.*', match_type: 'wildcard', name: 'custom_metric.process', tags: { tag_key_1: '$1', tag_key_2: '$2' } },
      { match: 'custom_metric.queue.*', name: 'custom_metric.queue.${1}_depth' },
    ],
  },
];

t.test("the agent's documented examples give the documented names and tags", (t) => {
  const m = MetricMapper.fromProfiles(AGENT_PROFILES);
  t.same(sortedTags(m.map('airflow.job.duration_sec.scheduler.scheduler_job')), {
    name: 'airflow.job.duration',
    tags: ['job_name:scheduler_job', 'job_type:scheduler'],
  });
  t.same(sortedTags(m.map('airflow.dag.my.dag.my_task.duration')), { name: 'airflow.dag.duration', tags: ['dag_id:my.dag', 'task_id:my_task'] });
  t.same(sortedTags(m.map('custom_metric.process.value_1.value_2')), { name: 'custom_metric.process', tags: ['tag_key_1:value_1', 'tag_key_2:value_2'] });
  t.same(m.map('custom_metric.queue.jobs'), { name: 'custom_metric.queue.jobs_depth', tags: [] }, '${1} expands');
  t.end();
});

t.test('wildcards match one dot-free segment; unmatched names and other prefixes pass unchanged', (t) => {
  const m = MetricMapper.fromProfiles(AGENT_PROFILES);
  t.equal(m.map('airflow.job.duration_sec.a.b.c'), 'unmatched', '* does not cross a dot');
  t.equal(m.map('airflow.job.duration_sec.a'), 'unmatched');
  t.equal(m.map('other.job.duration_sec.a.b'), 'unmatched');
  t.equal(m.map('xairflow.dag.a.b.duration'), 'unmatched', 'regex is anchored at the start');
  t.equal(m.map('airflow.dag.a.b.durationx'), 'unmatched', 'and at the end');
  t.end();
});

t.test('profiles are tried in order, and the first matching mapping wins', (t) => {
  const m = MetricMapper.fromProfiles([
    { name: 'a', prefix: 'x.', mappings: [{ match: 'x.nomatch.*', name: 'no' }] },
    { name: 'b', prefix: '*', mappings: [{ match: 'x.*', name: 'first.$1' }, { match: 'x.y', name: 'second' }] },
    { name: 'c', prefix: 'x.', mappings: [{ match: 'x.y', name: 'third' }] },
  ]);
  t.same(m.map('x.y'), { name: 'first.y', tags: [] });
  t.end();
});

t.test('bad profiles are refused at start-up, naming the field', (t) => {
  const cases: [unknown, RegExp][] = [
    [[{ name: 'p', prefix: 'a.', mappings: [{ match: 'a.(b)', name: 'x' }] }], /mappings\[0\]\.match: wildcard pattern/],
    [[{ name: 'p', prefix: 'a.', mappings: [{ match: 'a.(', match_type: 'regex', name: 'x' }] }], /mappings\[0\]\.match: invalid regex/],
    [[{ name: 'p', prefix: 'a.', mappings: [{ match: 'a.*', match_type: 'glob', name: 'x' }] }], /match_type: must be 'wildcard' or 'regex'/],
    [[{ name: 'p', prefix: 'a.', mappings: [{ match: 'a.*' }] }], /mappings\[0\]\.name: must be a non-empty string/],
    [[{ name: 'p', mappings: [] }], /\[0\]\.prefix/],
    [[{ name: 'p', prefix: 'a', mappings: [{ match: 'a', name: 'b', tag: {} }] }], /mappings\[0\]\.tag: unknown key/],
    [{}, /must be a list/],
    [[{ name: 'p', prefix: 'a.', mappings: [{ match: 'a.*.*', name: 'x.$3' }] }], /mappings\[0\]\.name: '\$3' refers to group 3, but 'a\.\*\.\*' has 2 group\(s\) \(mapping 'a\.\*\.\*'\) \(profile 'p'\)/],
    [[{ name: 'p', prefix: 'a.', mappings: [{ match: 'a\\.(.*)', match_type: 'regex', name: 'x', tags: { k: '${2}' } }] }], /mappings\[0\]\.tags\.k: '\$2' refers to group 2/],
    // Go would read $1_depth as the (missing) group "1_depth" and expand it to nothing: refused with the fix.
    [[{ name: 'p', prefix: 'a.', mappings: [{ match: 'a.*', name: 'a.$1_depth' }] }], /group named '1_depth'.*write \$\{1\}_depth/],
  ];
  for (const [raw, re] of cases) {
    t.throws(() => MetricMapper.fromProfiles(raw), re);
    try {
      MetricMapper.fromProfiles(raw);
    } catch (err) {
      t.ok(isMdError(err), 'an MdError');
    }
  }
  t.end();
});

t.test("statsd_exporter's documented mappings give the documented names and labels", (t) => {
  const m = MetricMapper.fromStatsdExporter({
    mappings: [
      { match: 'test.dispatcher.*.*.*', name: 'dispatcher_events_total', labels: { processor: '$1', action: '$2', outcome: '$3', job: 'test_dispatcher' } },
      { match: '*.signup.*.*', name: 'signup_events_total', labels: { provider: '$2', outcome: '$3', job: '${1}_server' } },
      { match: '(.*)\\.(.*)--(.*)\\.status\\.(.*)\\.count', match_type: 'regex', name: 'request_total', labels: { hostname: '$1', exec: '$2', protocol: '$3', code: '$4' } },
      { match: 'junk.*', action: 'drop', name: 'dropped' },
      { match: 'described.*', name: 'described', help: 'only for Prometheus output' },
    ],
  });
  t.same(sortedTags(m.map('test.dispatcher.FooProcessor.send.success')), {
    name: 'dispatcher_events_total',
    tags: ['action:send', 'job:test_dispatcher', 'outcome:success', 'processor:FooProcessor'],
  });
  t.same(sortedTags(m.map('foo_product.signup.facebook.failure')), {
    name: 'signup_events_total',
    tags: ['job:foo_product_server', 'outcome:failure', 'provider:facebook'],
  });
  t.same(sortedTags(m.map('web1.get--http.status.200.count')), {
    name: 'request_total',
    tags: ['code:200', 'exec:get', 'hostname:web1', 'protocol:http'],
  });
  t.equal(m.map('junk.x'), 'drop');
  t.same(m.map('described.x'), { name: 'described', tags: [] });
  t.equal(m.map('nothing.here'), 'unmatched');
  t.end();
});

t.test('statsd_exporter options with no equivalent are refused by name, not silently ignored', (t) => {
  t.throws(() => MetricMapper.fromStatsdExporter({ mappings: [{ match: 'a.*', name: 'a', timer_type: 'histogram' }] }), /mappings\[0\]\.timer_type: is not supported/);
  t.throws(() => MetricMapper.fromStatsdExporter({ mappings: [{ match: 'a.*', name: 'a', match_metric_type: 'counter' }] }), /match_metric_type: is not supported/);
  t.throws(() => MetricMapper.fromStatsdExporter({ defaults: { ttl: '1m' }, mappings: [] }), /defaults\.ttl: is not supported/);
  t.throws(() => MetricMapper.fromStatsdExporter({ mappings: [{ match: 'a.*', name: 'a', lables: {} }] }), /mappings\[0\]\.lables: unknown key/);
  t.throws(() => MetricMapper.fromStatsdExporter({ mappings: [{ match: 'a.*', name: 'a_$2' }] }), /mapping-config\.mappings\[0\]\.name: '\$2' refers to group 2, but 'a\.\*' has 1 group/);
  t.doesNotThrow(() => MetricMapper.fromStatsdExporter({ mappings: [{ match: '(?P<svc>[a-z]+)\\.hits', match_type: 'regex', name: '${svc}_hits_total' }] }), 'Go named groups are references too');
  t.doesNotThrow(() => MetricMapper.fromStatsdExporter({ defaults: { match_type: 'glob', glob_disable_ordering: false }, mappings: [] }));
  t.end();
});

t.test("templates follow Go's regexp.Expand", (t) => {
  const m = /^(?<first>a)(b)(c)?$/.exec('ab')!;
  t.equal(new Template('$1-${2}-$first-${first}').expand(m), 'a-b-a-a');
  t.equal(new Template('$$1 costs $').expand(m), '$1 costs $', '$$ is a literal $, a trailing $ is raw text');
  t.equal(new Template('[$3][$9][${x]').expand(m), '[][][${x]', 'missing groups are empty; a malformed reference is raw text');
  t.ok(new Template('plain').constant);
  t.end();
});
