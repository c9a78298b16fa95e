import t from 'tap';
import { cleanName, type BadValueReason } from '../src/heroku-metrics.js';
import { logfmt, parseUnitValue } from '../src/logfmt.js';
import { extractL2met } from './oracle.js';

t.test('logfmt: pairs, bare keys, quotes, escapes, empty values', async (t) => {
  t.same(logfmt('at=info method=GET'), [
    { key: 'at', value: 'info' },
    { key: 'method', value: 'GET' },
  ]);
  t.same(logfmt('count#signups desc="App crashed" x='), [
    { key: 'count#signups', value: undefined },
    { key: 'desc', value: 'App crashed' },
    { key: 'x', value: '' },
  ]);
  t.same(logfmt('q="say \\"hi\\"" next=1'), [
    { key: 'q', value: 'say "hi"' },
    { key: 'next', value: '1' },
  ]);
  t.same(logfmt('  a=1\t\tb=2  '), [
    { key: 'a', value: '1' },
    { key: 'b', value: '2' },
  ]);
  t.same(logfmt('fwd="unclosed quote runs on'), [{ key: 'fwd', value: 'unclosed quote runs on' }]);
  t.same(logfmt('dyno= connect= service=30000ms'), [
    { key: 'dyno', value: '' },
    { key: 'connect', value: '' },
    { key: 'service', value: '30000ms' },
  ]);
  t.same(logfmt('=orphan'), [], 'a pair without a key is skipped');
  t.same(logfmt(''), []);
});

t.test('parseUnitValue: numbers, units, signs, exponents; garbage rejected', async (t) => {
  t.same(parseUnitValue('12ms'), { value: 12, unit: 'ms' });
  t.same(parseUnitValue('40.9MB'), { value: 40.9, unit: 'MB' });
  t.same(parseUnitValue('84329pages'), { value: 84329, unit: 'pages' });
  t.same(parseUnitValue('8945836.0bytes'), { value: 8945836, unit: 'bytes' });
  t.same(parseUnitValue('15664876.0kB'), { value: 15664876, unit: 'kB' });
  t.same(parseUnitValue('50%'), { value: 50, unit: '%' });
  t.same(parseUnitValue('1bottle'), { value: 1, unit: 'bottle' });
  t.same(parseUnitValue('99'), { value: 99, unit: undefined });
  t.same(parseUnitValue('-5ms'), { value: -5, unit: 'ms' }, 'negative numbers parse (l2met rejects them)');
  t.same(parseUnitValue('+3'), { value: 3, unit: undefined });
  t.same(parseUnitValue('1e3'), { value: 1000, unit: undefined }, 'exponents parse (l2met reads 1)');
  t.same(parseUnitValue('2.5E-3s'), { value: 0.0025, unit: 's' });
  t.same(parseUnitValue('5events'), { value: 5, unit: 'events' }, 'an e that starts a unit is not an exponent');
  t.same(parseUnitValue('.5'), { value: 0.5, unit: undefined });
  t.same(parseUnitValue('3.'), { value: 3, unit: undefined });
  for (const bad of ['', 'ms', '1,000', '5ms!', 'NaN', 'Infinity', '1e999', '1ms\\n', '0x10', '1 ms', '-', '1.2.3', `1${'a'.repeat(25)}`]) {
    t.equal(parseUnitValue(bad), undefined, JSON.stringify(bad));
  }
});

t.test('cleanName: unsafe characters become _, empty and over-long names are refused', async (t) => {
  t.equal(cleanName('signup-controller'), 'signup-controller');
  t.equal(cleanName('db.query/p:x|y,z@w'), 'db.query/p_x_y_z_w');
  t.equal(cleanName(''), undefined);
  t.equal(cleanName('x'.repeat(200)), 'x'.repeat(200));
  t.equal(cleanName('x'.repeat(201)), undefined);
});

function l2met(line: string) {
  const bad: [BadValueReason, string][] = [];
  const r = extractL2met(logfmt(line), (reason, key) => bad.push([reason, key]));
  return { ...r, bad };
}

t.test('extractL2met: the wiki examples, several metrics per line', async (t) => {
  t.same(l2met('count#user.clicks=4').metrics, [{ kind: 'count', name: 'user.clicks', value: 4, unit: undefined }]);
  t.same(l2met('sample#database.size=40.9MB').metrics, [{ kind: 'sample', name: 'database.size', value: 40.9, unit: 'MB' }]);
  t.same(l2met('measure#database.query=200ms').metrics, [{ kind: 'measure', name: 'database.query', value: 200, unit: 'ms' }]);
  t.same(l2met('count#signups=1 measure#signup-controller=50ms sample#queue.length=99').metrics, [
    { kind: 'count', name: 'signups', value: 1, unit: undefined },
    { kind: 'measure', name: 'signup-controller', value: 50, unit: 'ms' },
    { kind: 'sample', name: 'queue.length', value: 99, unit: undefined },
  ]);
  t.same(l2met('count#beers-on-the-wall=1bottle').metrics, [{ kind: 'count', name: 'beers-on-the-wall', value: 1, unit: 'bottle' }]);
});

t.test('extractL2met: bare key is 1; empty value is bad, not 1; source; ignored forms', async (t) => {
  t.same(l2met('measure#a').metrics, [{ kind: 'measure', name: 'a', value: 1, unit: undefined }]);
  t.same(l2met('count#signups').metrics, [{ kind: 'count', name: 'signups', value: 1, unit: undefined }]);
  const empty = l2met('count#x= count#y=2');
  t.same(empty.metrics, [{ kind: 'count', name: 'y', value: 2, unit: undefined }]);
  t.same(empty.bad, [['bad_value', 'count#x']]);
  t.equal(l2met('source=web.1 count#a=1').source, 'web.1');
  t.equal(l2met('count#a=1 source= source=worker.2').source, 'worker.2', 'an empty source is no source');
  t.same(l2met('unique#user=bob@example.com measure.db.latency=20 plain=words').metrics, [], 'unique#, legacy measure. and plain pairs are not metrics');
  t.same(l2met('unique#user=bob').bad, [], '… and not bad either');
});

t.test('extractL2met: values (negative, exponent, %) and bad values counted by key', async (t) => {
  const r = l2met('measure#a=-5ms measure#b=1e3 sample#c=50% count#d=1,000 count#e=abc');
  t.same(r.metrics, [
    { kind: 'measure', name: 'a', value: -5, unit: 'ms' },
    { kind: 'measure', name: 'b', value: 1000, unit: undefined },
    { kind: 'sample', name: 'c', value: 50, unit: '%' },
  ]);
  t.same(r.bad, [
    ['bad_value', 'count#d'],
    ['bad_value', 'count#e'],
  ]);
  t.same(l2met(`count#=1 count#${'x'.repeat(201)}=1`).bad.map(([reason]) => reason), ['bad_name', 'bad_name']);
});

t.test('extractL2met: an l2meter unit written as the last name segment (`.ms=235`)', async (t) => {
  t.same(l2met('measure#db-query.ms=235').metrics, [{ kind: 'measure', name: 'db-query', value: 235, unit: 'ms' }]);
  t.same(l2met('sample#db.size.bytes=10').metrics, [{ kind: 'sample', name: 'db.size', value: 10, unit: 'bytes' }]);
  t.same(l2met('measure#db-query.ms=235s').metrics, [{ kind: 'measure', name: 'db-query.ms', value: 235, unit: 's' }], 'a value unit wins; the name is kept');
  t.same(l2met('count#api.v2=1').metrics, [{ kind: 'count', name: 'api.v2', value: 1, unit: undefined }], 'only known units are taken off');
  t.same(l2met('count#ms=1').metrics, [{ kind: 'count', name: 'ms', value: 1, unit: undefined }], 'a name that is only a unit stays');
});
