import t from 'tap';
import { buildConfig, parseDurationMs, parseListen } from '../src/config.js';

t.test('durations need a unit on the command line; numbers in a file are milliseconds', async (t) => {
  t.equal(parseDurationMs('10s'), 10_000);
  t.equal(parseDurationMs('500ms'), 500);
  t.equal(parseDurationMs('1.5m'), 90_000);
  t.equal(parseDurationMs('1h'), 3_600_000);
  t.equal(parseDurationMs(250), 250);
  t.throws(() => parseDurationMs('10'), /duration/);
  t.throws(() => parseDurationMs('ten seconds'), /duration/);
});

t.test('listen addresses', async (t) => {
  t.same(parseListen('127.0.0.1:8125'), { host: '127.0.0.1', port: 8125 });
  t.same(parseListen('[::1]:0'), { host: '::1', port: 0 });
  t.same(parseListen(':9000'), { host: '0.0.0.0', port: 9000 });
  t.equal(parseListen('off'), undefined);
  t.throws(() => parseListen('localhost'), /host:port/);
  t.throws(() => parseListen('a:70000'), /range/);
});

t.test('defaults, file, env and flags: flags > env > file > default', async (t) => {
  const d = buildConfig({}, {}, 'f', {});
  t.same(d.statsdUdp, { host: '127.0.0.1', port: 8125 });
  t.same(d.statsdTcp, { host: '127.0.0.1', port: 8125 });
  t.same(d.http, { host: '127.0.0.1', port: 8080 });
  t.equal(d.flushIntervalMs, 10_000);
  t.same(d.sinks, ['console']);
  t.same(d.histogramPercentiles, [0.95]);
  t.ok(Object.isFrozen(d));
  const c = buildConfig({ flushIntervalMs: '5s', datadogSite: 'file.example' }, { flushIntervalMs: '1s' }, 'f', { DD_SITE: 'datadoghq.eu' });
  t.equal(c.flushIntervalMs, 1000);
  t.equal(c.datadogSite, 'datadoghq.eu');
});

t.test('DD_API_KEY makes datadog the default sink; --sink still overrides', async (t) => {
  t.same(buildConfig({}, {}, 'f', { DD_API_KEY: 'abcd1234' }).sinks, ['datadog']);
  t.same(buildConfig({}, { sinks: ['console'] }, 'f', { DD_API_KEY: 'abcd1234' }).sinks, ['console']);
  t.throws(() => buildConfig({}, { sinks: ['datadog'] }, 'f', {}), /needs --datadog-api-key/);
});

t.test('unknown keys and bad values are named; secrets are not echoed', async (t) => {
  t.throws(() => buildConfig({ flushInterval: '10s' }, {}, 'c.yaml', {}), { code: 'MD_ERR_CONFIG_UNKNOWN_KEY', message: /unknown key 'flushInterval' in c\.yaml \(did you mean 'flushIntervalMs'\?\)/ });
  t.throws(() => buildConfig({ maxContexts: -1 }, {}, 'c.yaml', {}), { code: 'MD_ERR_CONFIG_INVALID', message: /key 'maxContexts' in c\.yaml/ });
  t.throws(() => buildConfig({}, { histogramPercentiles: '95' }, 'f', {}), /option --histogram-percentiles/);
  t.throws(() => buildConfig({}, { histogramAggregates: 'max,p99' }, 'f', {}), /--histogram-aggregates/);
  const err = (() => {
    try {
      buildConfig({}, { httpAuth: [':'] }, 'f', {});
    } catch (e) {
      return e as Error;
    }
    return undefined;
  })();
  t.match(err?.message, /--http-auth/);
});

t.test('credentials: user:pass, bare token user, :password and objects with app', async (t) => {
  const c = buildConfig({ httpAuth: ['u:p', 'tok', ':secret', { user: 'x', password: 'y', app: 'shop' }] }, {}, 'f', {});
  t.same(c.httpAuth, [{ user: 'u', password: 'p' }, { user: 'tok' }, { password: 'secret' }, { user: 'x', password: 'y', app: 'shop' }]);
  t.throws(() => buildConfig({ httpAuth: [{ user: 'x', role: 'admin' }] }, {}, 'f', {}), /unknown credential field 'role'/);
});

t.test('--statsd-udp-kernel-drops-poll: default 10s, 0 turns it off', async (t) => {
  t.equal(buildConfig({}, {}, undefined, {}).statsdUdpKernelDropsPollMs, 10_000);
  t.equal(buildConfig({}, { statsdUdpKernelDropsPollMs: '0' }, undefined, {}).statsdUdpKernelDropsPollMs, 0);
  t.equal(buildConfig({ statsdUdpKernelDropsPollMs: 0 }, {}, undefined, {}).statsdUdpKernelDropsPollMs, 0);
  t.equal(buildConfig({}, { statsdUdpKernelDropsPollMs: '2s' }, undefined, {}).statsdUdpKernelDropsPollMs, 2000);
  t.throws(() => buildConfig({}, { statsdUdpKernelDropsPollMs: 'often' }, undefined, {}), /--statsd-udp-kernel-drops-poll/);
});

t.test('Datadog retry age: --datadog-retry-max-age (default 1h)', async (t) => {
  t.equal(buildConfig({}, {}, undefined, {}).datadogRetryMaxAgeMs, 3_600_000);
  t.equal(buildConfig({ datadogRetryMaxAgeMs: '20m' }, {}, undefined, {}).datadogRetryMaxAgeMs, 1_200_000);
  t.throws(() => buildConfig({}, { datadogRetryMaxAgeMs: '0s' }, undefined, {}), /--datadog-retry-max-age/);
  t.throws(() => buildConfig({ datadogRetryMaxAgeMs: '0s' }, {}, undefined, {}), /datadogRetryMaxAgeMs/);
});

t.test('Datadog retry backoff: --datadog-retry-base / --datadog-retry-max (defaults 2s / 64s)', async (t) => {
  const d = buildConfig({}, {}, 'f', {});
  t.equal(d.datadogRetryBaseMs, 2000);
  t.equal(d.datadogRetryMaxMs, 64_000);
  const c = buildConfig({ datadogRetryBaseMs: 50 }, { datadogRetryMaxMs: '1s' }, 'f', {});
  t.equal(c.datadogRetryBaseMs, 50);
  t.equal(c.datadogRetryMaxMs, 1000);
  t.throws(() => buildConfig({}, { datadogRetryBaseMs: '0ms' }, 'f', {}), /--datadog-retry-base.*at least 1ms/);
});

t.test("transform keys: the agent's names are accepted as its datadog.yaml writes them, camelCase too, never both", async (t) => {
  const agent = buildConfig({ statsd_metric_namespace: 'shop', metric_filterlist: ['a', 'b'], metric_filterlist_match_prefix: true, statsd_metric_namespace_blacklist: ['x.'] }, {}, 'f', {});
  t.equal(agent.namespace, 'shop');
  t.same(agent.metricFilterlist, ['a', 'b']);
  t.equal(agent.metricFilterlistMatchPrefix, true);
  t.same(agent.namespaceBlocklist, ['x.'], 'the older _blacklist spelling too');
  t.equal(buildConfig({ namespace: 'ns' }, {}, 'f', {}).namespace, 'ns');
  t.equal(buildConfig({ statsd_metric_namespace: 'file' }, { namespace: 'flag' }, 'f', {}).namespace, 'flag', 'a flag overrides either key');
  t.throws(() => buildConfig({ metricFilterlist: ['a'], metric_filterlist: ['b'] }, {}, 'c.yaml', {}), { code: 'MD_ERR_CONFIG_INVALID', message: /keys 'metricFilterlist' and 'metric_filterlist' in c\.yaml set the same option/ });
  t.throws(() => buildConfig({ dogstatsd_mapper_profiles: [{ name: 'p', prefix: 'a', mappings: [], extra: 1 }] }, {}, 'c.yaml', {}), {
    code: 'MD_ERR_CONFIG_UNKNOWN_KEY',
    message: /key 'dogstatsd_mapper_profiles' in c\.yaml: dogstatsd_mapper_profiles\[0\]\.extra: unknown key/,
  });
  t.throws(() => buildConfig({ metric_tag_filterlist: [{ metric_name: 'm', action: 'drop', tags: [] }] }, {}, 'c.yaml', {}), /metric_tag_filterlist\[0\]\.action/);
  const json = buildConfig({ dogstatsd_mapper_profiles: '[{"name":"p","prefix":"a.","mappings":[{"match":"a.*","name":"b"}]}]' }, {}, 'f', {});
  t.same(json.dogstatsdMapperProfiles, [{ name: 'p', prefix: 'a.', mappings: [{ match: 'a.*', name: 'b' }] }], 'the JSON string form of DD_DOGSTATSD_MAPPER_PROFILES');
  t.throws(() => buildConfig({ statsd_metric_namespace_typo: 'x' }, {}, 'c.yaml', {}), { code: 'MD_ERR_CONFIG_UNKNOWN_KEY' });
});
