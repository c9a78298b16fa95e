import t from 'tap';
import { Aggregator } from '../../src/aggregator.js';
import { ContextTable } from '../../src/context-table.js';
import { isMdError } from '../../src/errors.js';
import type { MetricBatch } from '../../src/model.js';
import type { TransformOptions } from '../../src/transform/stage.js';

const NOW = 1_700_000_000_000;

const TRANSFORM: TransformOptions = {
  mapperProfiles: [
    {
      name: 'servers',
      prefix: 'servers.',
      mappings: [
        { match: 'servers.*.http.*.count', name: 'http.requests', tags: { server: '$1', status: '$2' } },
        { match: 'servers\\.([^.]+)\\.queue\\.depth', match_type: 'regex', name: 'queue.${1}_depth' },
      ],
    },
  ],
  namespace: 'shop',
  filterlist: { names: ['shop.debug.'], matchPrefix: true },
  tagFilterlist: [{ metric_name: 'shop.api.calls', action: 'exclude', tags: ['user_id'] }],
};

function agg(transform: TransformOptions | null = TRANSFORM, maxContexts?: number): Aggregator {
  return new Aggregator({ now: () => NOW, hostname: 'h', selfMetrics: false, transform: transform ?? undefined, maxContexts });
}

function names(batch: MetricBatch): string[] {
  return batch.series.map((s) => `${s.metric} ${s.value} ${s.tags.join(',')}`).sort();
}

/** Counts the calls of `ContextTable.prototype.transform` (one per key the table had not seen) while `fn` runs. */
function countTransforms(fn: () => void): number {
  const proto = ContextTable.prototype;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called back with its own `this` below
  const original = proto.transform;
  let calls = 0;
  proto.transform = function (this: ContextTable, name: string, tags: readonly string[]) {
    calls++;
    return original.call(this, name, tags);
  };
  try {
    fn();
  } finally {
    proto.transform = original;
  }
  return calls;
}

t.test('StatsD lines and object-form samples are mapped, namespaced and filtered', (t) => {
  const a = agg();
  a.ingestStatsd(Buffer.from('servers.web1.http.200.count:2|c\nservers.web1.http.200.count:3|c|#env:prod\nservers.db.queue.depth:7|g\nplain:1|g\ndebug.trace:5|c'));
  a.ingestStatsd(Buffer.from('api.calls:1|c|#user_id:1,route:/a\napi.calls:1|c|#user_id:2,route:/a\njvm.heap:9|g'));
  t.equal(a.addSample({ name: 'servers.web2.http.500.count', type: 'c', value: 10 }), 'accepted');
  t.equal(a.addSample({ name: 'debug.x', type: 'c', value: 1 }, 4), 'dropped', 'a blocked object-form sample');
  const b = a.closeWindow();
  t.same(names(b), [
    'jvm.heap 9 ',
    'shop.api.calls 0.2 route:/a',
    'shop.http.requests 0.2 server:web1,status:200',
    'shop.http.requests 0.3 env:prod,server:web1,status:200',
    'shop.http.requests 1 server:web2,status:500',
    'shop.plain 1 ',
    'shop.queue.db_depth 7 ',
  ]);
  const stats = a.stats.component('transform');
  t.equal(stats.dropped('blocked'), 5, 'one StatsD line and a sample of weight 4');
  t.equal(stats.counter('tags_excluded'), 2, 'each user_id tag removed from a new key');
  t.end();
});

t.test('the transform runs once per key, never again for a line of a key already seen', (t) => {
  const a = agg();
  const packet = Buffer.from(['servers.web1.http.200.count:1|c', 'servers.web1.http.200.count:1|c|#a:b', 'debug.x:1|c', 'api.calls:1|c|#user_id:7', 'plain:1|g'].join('\n'));
  t.equal(countTransforms(() => a.ingestStatsd(packet)), 5, 'first sight: one per key');
  t.equal(countTransforms(() => { for (let i = 0; i < 1000; i++) a.ingestStatsd(packet); }), 0, 'the raw index maps the original bytes to the mapped context, or to the blocked mark');
  t.equal(a.stats.component('transform').dropped('blocked'), 1001);
  const sample = { name: 'servers.web9.http.404.count', type: 'c' as const, value: 1 };
  t.equal(countTransforms(() => { for (let i = 0; i < 100; i++) a.addSample(sample); }), 1, 'object-form samples resolve their alias key once too');
  t.end();
});

t.test('a tag filter collapses the contexts of a metric, and every collapsed key is still found directly', (t) => {
  const lines = Array.from({ length: 50 }, (_, i) => `api.calls:1|c|#user_id:${i},route:/a`).join('\n');
  const without = agg(null);
  without.ingestStatsd(Buffer.from(lines));
  t.equal(without.contextCount, 50);
  const a = agg();
  t.equal(countTransforms(() => a.ingestStatsd(Buffer.from(lines))), 50);
  t.equal(a.contextCount, 1, 'user_id excluded: one context');
  t.equal(countTransforms(() => a.ingestStatsd(Buffer.from(lines))), 0, 'past MAX_ALIASES, keys come from the shared budget');
  t.same(names(a.closeWindow()), ['shop.api.calls 10 route:/a']);
  t.end();
});

t.test('a cardinality attack on mapped and blocked names stays bounded by maxContexts and the cache bound', (t) => {
  const a = new Aggregator({ now: () => NOW, hostname: 'h', selfMetrics: false, maxContexts: 100, transform: { ...TRANSFORM, cacheSize: 50 } });
  const table = (a as unknown as { table: ContextTable }).table;
  const stage = (table as unknown as { tf: { stage: { cached: number } } }).tf.stage;
  for (let p = 0; p < 50; p++) {
    const lines: string[] = [];
    for (let i = 0; i < 100; i++) lines.push(`servers.s${p}_${i}.http.200.count:1|c`, `debug.n${p}_${i}:1|c`, `api.calls:1|c|#user_id:${p}_${i}`);
    a.ingestStatsd(Buffer.from(lines.join('\n')));
  }
  t.equal(a.contextCount, 100, 'contexts stop at maxContexts');
  t.ok(stage.cached <= 50, `decisions cached ${stage.cached} ≤ cacheSize`);
  // Each context: its own entry and MAX_ALIASES (4) keys; then the shared budget and the blocked ring, maxContexts each.
  t.ok(table.rawKeys <= 100 * 5 + 100 + 100, `raw keys ${table.rawKeys} ≤ contexts × 5 + shared budget + blocked ring`);
  t.ok(table.rawKeys >= 300, 'the attack did fill the budget and the ring');
  t.equal(a.stats.component('transform').dropped('blocked'), 5000, 'every blocked sample counted, cached or not');
  t.equal(a.stats.component('aggregator').dropped('max_contexts'), 4901, 'mapped names past the limit are dropped and counted');
  t.end();
});

t.test('a blocked key past the ring is forgotten, and still blocked when it comes back', (t) => {
  const a = agg(TRANSFORM, 10);
  const table = (a as unknown as { table: ContextTable }).table;
  a.ingestStatsd(Buffer.from(Array.from({ length: 25 }, (_, i) => `debug.k${i}:1|c`).join('\n')));
  t.equal(table.rawKeys, 10, 'the blocked ring holds maxContexts keys');
  t.equal(countTransforms(() => a.ingestStatsd(Buffer.from('debug.k0:1|c\ndebug.k24:1|c'))), 1, 'k0 was evicted and decided again; k24 is cached');
  t.equal(a.stats.component('transform').dropped('blocked'), 27);
  t.equal(a.contextCount, 0, 'blocked names never create a context');
  t.end();
});

t.test('timestamped samples are transformed too; events and service checks are not', (t) => {
  const a = agg();
  a.ingestStatsd(Buffer.from(`servers.web1.http.200.count:4|c|T${NOW / 1000 - 5}\ndebug.y:1|g|T${NOW / 1000 - 5}\n_e{5,4}:debug|text\n_sc|debug.check|0`));
  t.equal(a.addSample({ name: 'plain', type: 'g', value: 3, timestampS: NOW / 1000 - 5 }), 'accepted');
  const b = a.closeWindow();
  t.same(names(b), ['shop.http.requests 0.4 server:web1,status:200', 'shop.plain 3 ']);
  t.equal(b.events[0]?.title, 'debug');
  t.equal(b.serviceChecks[0]?.name, 'debug.check');
  t.equal(a.stats.component('transform').dropped('blocked'), 1);
  t.end();
});

t.test('self-metrics are never transformed: an allow list cannot hide them', (t) => {
  const a = new Aggregator({ now: () => NOW, hostname: 'h', transform: { filterlist: { names: ['ns.app.'], matchPrefix: true, mode: 'allow' }, namespace: 'ns' } });
  a.ingestStatsd(Buffer.from('app.ok:1|c\nother:1|c'));
  const b = a.closeWindow();
  const metrics = b.series.map((s) => s.metric);
  t.ok(metrics.includes('ns.app.ok'));
  t.notOk(metrics.includes('ns.other'));
  const dropped = b.series.find((s) => s.metric === 'metrics_distributor.dropped' && s.tags.includes('component:transform'));
  t.same(dropped?.tags, ['component:transform', 'reason:blocked'], 'dropped{component:transform,reason:blocked} is emitted');
  t.end();
});

t.test('no transform configured: no transform component, names untouched', (t) => {
  const a = new Aggregator({ now: () => NOW, hostname: 'h', transform: {} });
  a.ingestStatsd(Buffer.from('servers.web1.http.200.count:1|c'));
  const b = a.closeWindow();
  t.ok(b.series.some((s) => s.metric === 'servers.web1.http.200.count'));
  t.notOk([...a.stats.all()].some((s) => s.component === 'transform'));
  t.end();
});

t.test('a bad transform config throws at construction, naming the profile, the mapping and the field', (t) => {
  const bad: [TransformOptions, RegExp][] = [
    [{ mapperProfiles: [{ name: 'airflow', prefix: 'a.', mappings: [{ match: 'a.(', match_type: 'regex', name: 'x' }] }] }, /dogstatsd_mapper_profiles\[0\]\.mappings\[0\]\.match: invalid regex 'a\.\(' \(mapping 'a\.\('\) \(profile 'airflow'\)/],
    [{ mapperProfiles: [{ name: 'p', prefix: 'a.', mappings: [{ match: 'a.*.*', name: 'b.$3' }] }] }, /'\$3' refers to group 3, but 'a\.\*\.\*' has 2 group/],
    [{ mapperProfiles: [{ name: 'p', prefix: 'a.', mappings: [{ match: 'a.*', name: 'b', extra: 1 }] }] }, /mappings\[0\]\.extra: unknown key/],
    [{ filterlist: { names: ['a'], mode: 'deny' } } as unknown as TransformOptions, /transform\.filterlist\.mode/],
    [{ filterlist: { names: 'a' } } as unknown as TransformOptions, /transform\.filterlist\.names/],
    [{ cacheSize: 0 }, /transform\.cacheSize/],
  ];
  for (const [transform, re] of bad) {
    let err: unknown;
    try {
      new Aggregator({ transform });
    } catch (e) {
      err = e;
    }
    t.ok(isMdError(err) && err.code.startsWith('MD_ERR_CONFIG_'), 'an MdError with a config code');
    t.match((err as Error | undefined)?.message, re);
  }
  t.end();
});

t.test('the shared key budget is bounded by maxContexts and given back when a context is forgotten', (t) => {
  const a = new Aggregator({ now: () => NOW, hostname: 'h', selfMetrics: false, maxContexts: 10, transform: { tagFilterlist: [{ metric_name: 'g', action: 'exclude', tags: ['user_id'] }] } });
  const packet = Buffer.from(Array.from({ length: 50 }, (_, i) => `g:${i}|g|#user_id:${i}`).join('\n'));
  t.equal(countTransforms(() => a.ingestStatsd(packet)), 50);
  // The context's own entry, its 4 keys and the 10 of the budget are found directly; 35 are not.
  t.equal(countTransforms(() => a.ingestStatsd(packet)), 35);
  t.equal(a.contextCount, 1);
  a.closeWindow();
  a.closeWindow(); // an idle gauge is forgotten at once, with its keys
  t.equal(a.contextCount, 0);
  t.equal(countTransforms(() => a.ingestStatsd(packet)), 50);
  t.equal(countTransforms(() => a.ingestStatsd(packet)), 35, 'the budget came back whole');
  t.end();
});

t.test('reconfigure swaps the rules and global tags for lines from then on; a bad config changes nothing', (t) => {
  const a = agg();
  const line = Buffer.from('debug.trace:5|c\nservers.web1.http.200.count:2|c');
  a.ingestStatsd(line);
  // The same bytes again: found in the raw index, so only a rekey can make them resolve differently.
  a.ingestStatsd(line);
  a.reconfigure({ transform: { namespace: 'v2' }, globalTags: ['region:eu'] });
  a.ingestStatsd(line);
  a.addSample({ name: 'debug.x', type: 'c', value: 1 });
  t.throws(() => a.reconfigure({ transform: { mapperProfiles: [{ name: 'bad', prefix: 'x.', mappings: [{ match: 'x.(', match_type: 'regex', name: 'y' }] }] } }), 'a bad regex throws');
  a.ingestStatsd(line);
  const b = a.closeWindow();
  const got = new Map(b.series.map((s) => [`${s.metric} ${s.tags.join(',')}`, s.value]));
  t.equal(got.get('shop.http.requests server:web1,status:200'), 0.4, 'before: mapped, twice (rates over 10 s)');
  t.equal(got.get('shop.debug.trace '), undefined, 'before: blocked');
  t.equal(got.get('v2.debug.trace region:eu'), 1, 'after: the filter is gone, namespace and global tag new (the bad reconfigure kept them)');
  t.equal(got.get('v2.servers.web1.http.200.count region:eu'), 0.4, 'after: no mapping');
  t.equal(got.get('v2.debug.x region:eu'), 0.1, 'object-form samples too');
  t.end();
});
