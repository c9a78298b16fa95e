import fc from 'fast-check';
import t from 'tap';
import { NameFilter, Namespace } from '../../src/transform/filters.js';
import { TransformStage } from '../../src/transform/stage.js';

t.test('mapping, then namespace, then filters, in the agent order', (t) => {
  const stage = new TransformStage({
    mapperProfiles: [{ name: 'p', prefix: 'servers.', mappings: [{ match: 'servers.*.http.*.count', name: 'http.requests', tags: { server: '$1', status: '$2' } }] }],
    namespace: 'shop',
    filterlist: { names: ['shop.blocked'], mode: 'block' },
    tagFilterlist: [{ metric_name: 'shop.http.requests', action: 'exclude', tags: ['user_id'] }],
  });
  const d = stage.decide('servers.web1.http.200.count');
  t.equal(d.name, 'shop.http.requests');
  t.same(d.addTags, ['server:web1', 'status:200']);
  t.notOk(d.blocked);
  const { tags, removed } = TransformStage.applyTags(d, ['env:prod', 'user_id:42', 'user_id']);
  t.same(tags, ['env:prod', 'server:web1', 'status:200']);
  t.equal(removed, 2, 'both the key:value and the bare form of the key are removed');
  t.ok(stage.decide('blocked').blocked, 'the filter sees the namespaced name');
  t.equal(stage.decide('jvm.heap').name, 'jvm.heap', 'default namespace blocklist');
  t.equal(stage.decide('metrics_distributor.received').name, 'metrics_distributor.received', 'self-metrics are never namespaced');
  t.end();
});

t.test('decisions are cached per name and the cache is bounded', (t) => {
  const stage = new TransformStage({ namespace: 'ns.', cacheSize: 100 });
  const first = stage.decide('a');
  t.equal(stage.decide('a'), first, 'same object: computed once');
  for (let i = 0; i < 10_000; i++) stage.decide(`name${i}`);
  t.equal(stage.cached, 100);
  t.equal(stage.decide('name9999').name, 'ns.name9999');
  t.end();
});

t.test('an empty stage says so, so the aggregator can skip it', (t) => {
  t.ok(new TransformStage({}).empty);
  t.ok(new TransformStage({ filterlist: { names: [] }, namespace: '' }).empty);
  t.notOk(new TransformStage({ filterlist: { names: [], mode: 'allow' } }).empty, 'an empty allow list blocks everything');
  t.end();
});

t.test('allow lists and prefix matching', (t) => {
  const allow = new NameFilter({ names: ['app.'], matchPrefix: true, mode: 'allow' });
  t.notOk(allow.blocks('app.x'));
  t.ok(allow.blocks('other.x'));
  const exact = new NameFilter({ names: ['a.b'] });
  t.ok(exact.blocks('a.b'));
  t.notOk(exact.blocks('a.b.c'), 'without matchPrefix entries are whole names');
  t.end();
});

t.test('prefix filter agrees with a linear scan for any list and name', (t) => {
  const seg = fc.constantFrom('a', 'b', 'ab', '.', 'ba', '');
  fc.assert(
    fc.property(fc.array(fc.array(seg, { maxLength: 4 }).map((s) => s.join('')), { maxLength: 12 }), fc.array(seg, { maxLength: 6 }).map((s) => s.join('')), (names, name) => {
      const f = new NameFilter({ names, matchPrefix: true });
      return f.blocks(name) === names.some((p) => name.startsWith(p));
    }),
    { numRuns: 2000 },
  );
  t.end();
});

t.test('namespace adds a dot the way the agent does', (t) => {
  t.equal(new Namespace('app').apply('x'), 'app.x');
  t.equal(new Namespace('app.').apply('x'), 'app.x');
  t.equal(new Namespace('app', ['x']).apply('xy'), 'xy', 'a blocklist entry is a prefix');
  t.equal(new Namespace('app', []).apply('jvm.heap'), 'app.jvm.heap', 'an explicit empty blocklist exempts nothing');
  t.end();
});

t.test('bad tag filter rules are refused naming the field', (t) => {
  t.throws(() => new TransformStage({ tagFilterlist: [{ metric_name: 'a', action: 'drop', tags: [] }] }), /metric_tag_filterlist\[0\]\.action/);
  t.throws(() => new TransformStage({ tagFilterlist: [{ metric_name: 'a', tags: 'user_id' }] }), /metric_tag_filterlist\[0\]\.tags/);
  t.throws(() => new TransformStage({ tagFilterlist: [{ metric: 'a', tags: [] }] }), /metric_tag_filterlist\[0\]\.metric: unknown key/);
  t.end();
});
