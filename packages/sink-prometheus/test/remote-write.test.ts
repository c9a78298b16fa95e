import t from 'tap';
import { randomBytes } from 'node:crypto';
import { encodeTimeSeries, parseLabels, snappyCompress } from '../src/index.js';
import { batch, dist, makeSink, point } from './helpers.js';
import { decodeWriteRequest, snappyDecode, standIn } from './rw-helpers.js';

const WINDOW = 1_700_000_000_000;
/** A recent window: the retry path drops data older than the age limit (1 h). */
const NOW_WINDOW = Math.floor(Date.now() / 10_000) * 10_000;
const recent = (b: ReturnType<typeof batch>, plus = 0) => ({ ...b, windowStartMs: NOW_WINDOW + plus });

t.test('snappy block format round-trips: empty, short, repetitive, random, long literals and copies, over 64 KiB', async (t) => {
  const cases: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from('a'),
    Buffer.from('abcdabcdabcdabcd'),
    Buffer.from('x'.repeat(100_000)),
    randomBytes(70_000),
    Buffer.concat([randomBytes(300), Buffer.from('hello world '.repeat(500)), randomBytes(70_000), Buffer.from('tail tail tail tail')]),
    Buffer.from(Array.from({ length: 5000 }, (_, i) => `metric_${i % 37}{host="web-${i % 5}"} ${i}\n`).join('')),
  ];
  for (const c of cases) {
    const z = snappyCompress(c);
    t.ok(snappyDecode(z).equals(c), `${c.length} bytes`);
  }
  const rep = snappyCompress(Buffer.from('x'.repeat(100_000)));
  t.ok(rep.length < 5000, `repetitive input compresses (${rep.length} bytes)`);
});

t.test('parseLabels undoes the exposition escaping', async (t) => {
  t.same(parseLabels(''), []);
  t.same(parseLabels('host="a",path="/a\\"b\\\\c\\nd"'), [['host', 'a'], ['path', '/a"b\\c\nd']]);
});

const rw = (url: string, extra = {}) => ({ scrape: false, remoteWrite: { url, retryBaseMs: 20, retryMaxMs: 40, ...extra } });

t.test('remote write: spec headers, basic auth from the URL, sorted labels, cumulative counters, histograms, window-start timestamps', async (t) => {
  const srv = await standIn();
  t.teardown(srv.close);
  const url = srv.url.replace('http://', 'http://alice:s%3Acret@');
  const { sink, context } = makeSink({ ...rw(url, { headers: { 'X-Scope-OrgID': 'team-a' } }), buckets: [1, 10] });
  await sink.export(batch([point('jobs.done', 'count', 3, { host: 'h1', tags: ['env:prod', 'Zone:b'] }), point('temp', 'gauge', 21.5)], [dist('size', [1, 5, 20])]));
  await sink.export({ ...batch([point('jobs.done', 'count', 4, { host: 'h1', tags: ['env:prod', 'Zone:b'] })]), windowStartMs: WINDOW + 10_000 });
  t.equal(srv.seen.length, 2);
  const h = srv.seen[0]!.headers;
  t.equal(h['content-encoding'], 'snappy');
  t.equal(h['content-type'], 'application/x-protobuf');
  t.equal(h['x-prometheus-remote-write-version'], '0.1.0');
  t.match(h['user-agent'], /^metrics-distributor/);
  t.equal(h['authorization'], `Basic ${Buffer.from('alice:s:cret').toString('base64')}`);
  t.equal(h['x-scope-orgid'], 'team-a');
  const first = srv.seen[0]!.series;
  const jobs = first.find((s) => s.labels.some(([k, v]) => k === '__name__' && v === 'jobs_done_total'))!;
  // Byte order: upper case sorts before `__name__`, which sorts before lower case.
  t.same(jobs.labels, [['Zone', 'b'], ['__name__', 'jobs_done_total'], ['env', 'prod'], ['host', 'h1']]);
  t.equal(jobs.value, 3);
  t.equal(jobs.timestampMs, WINDOW);
  t.same(first.find((s) => s.labels[0]![1] === 'temp'), { labels: [['__name__', 'temp']], value: 21.5, timestampMs: WINDOW });
  const byName = (name: string) => first.filter((s) => s.labels.some(([k, v]) => k === '__name__' && v === name));
  t.same(byName('size_bucket').map((s) => [s.labels.find(([k]) => k === 'le')![1], s.value]), [['1', 1], ['10', 2], ['+Inf', 3]]);
  t.equal(byName('size_sum')[0]!.value, 26);
  t.equal(byName('size_count')[0]!.value, 3);
  // The second window sends only what it touched, with the cumulative total.
  t.same(srv.seen[1]!.series.map((s) => [s.labels[1]![1], s.value, s.timestampMs]), [['jobs_done_total', 7, WINDOW + 10_000]]);
  t.equal(context.stats.dropped(), 0);
  t.equal(context.stats.sent, 4);
});

t.test('5xx and 429 are retried with backoff (Retry-After honoured) through the policy; nothing is lost', async (t) => {
  const answers = [{ status: 503 }, { status: 429, headers: { 'retry-after': '1' } }, { status: 502 }];
  const srv = await standIn((n) => answers[n] ?? { status: 200 });
  t.teardown(srv.close);
  const { sink, context } = makeSink(rw(srv.url));
  t.same(await sink.export(recent(batch([point('a', 'count', 1)]))), { code: 'success' }, 'parked, not lost');
  const delivered = async (n: number) => {
    const until = Date.now() + 8000;
    while (srv.seen.filter((x) => x.status === 200).length < n && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  };
  await delivered(1);
  t.same(srv.seen.map((x) => x.status), [503, 429, 502, 200]);
  t.ok(srv.seen[2]!.at - srv.seen[1]!.at >= 990, `the 1 s Retry-After was waited out (${srv.seen[2]!.at - srv.seen[1]!.at} ms)`);
  t.same(srv.seen.map((x) => x.series[0]!.value), [1, 1, 1, 1], 'the same payload each time');
  // The next window goes straight through, with the cumulative total.
  await sink.export(recent(batch([point('a', 'count', 2)]), 10_000));
  await delivered(2);
  t.same(srv.accepted().get('__name__=a_total'), [1, 3]);
  t.equal(context.stats.dropped(), 0);
  await sink.shutdown(Date.now() + 1000);
});

t.test('other 4xx are dropped and counted; 413 splits the request until it fits; maxSamplesPerRequest splits up front', async (t) => {
  const srv = await standIn((n, series) => (n === 0 ? { status: 400 } : series.length > 2 ? { status: 413 } : { status: 204 }));
  t.teardown(srv.close);
  const { sink, context } = makeSink(rw(srv.url));
  const r = await sink.export(batch([point('a', 'count', 1), point('b', 'count', 1)]));
  t.equal(r.code, 'failure');
  t.equal(context.stats.dropped('bad_request'), 2, 'each sample of the refused request counted');
  await sink.export(batch(['c', 'd', 'e', 'f', 'g'].map((m) => point(m, 'gauge', 1))));
  t.same([...srv.accepted().keys()].sort(), ['c', 'd', 'e', 'f', 'g'].map((m) => `__name__=${m}`));
  t.same(srv.seen.slice(1).map((x) => [x.status, x.series.length]), [[413, 5], [413, 3], [204, 2], [204, 1], [204, 2]]);
  t.equal(context.stats.dropped('payload_too_large'), 0);

  const srv2 = await standIn();
  t.teardown(srv2.close);
  const { sink: s2 } = makeSink({ ...rw(srv2.url, { maxSamplesPerRequest: 2 }), buckets: [1] });
  await s2.export(batch([point('x', 'gauge', 1)], [dist('h', [0.5])]));
  t.same(srv2.seen.map((x) => x.series.length), [2, 2, 1], 'a gauge and 4 histogram samples in requests of 2');
});

t.test('a receiver that stays down: the shutdown deadline counts the rest as shutdown_unsent', async (t) => {
  const srv = await standIn(() => ({ status: 500 }));
  t.teardown(srv.close);
  const { sink, context } = makeSink(rw(srv.url));
  await sink.export(recent(batch([point('a', 'gauge', 1), point('b', 'gauge', 2)])));
  await sink.shutdown(Date.now() + 300);
  t.equal(context.stats.dropped('shutdown_unsent'), 2);
  t.ok(srv.seen.length >= 2, 'retried until the deadline');
});

t.test('encodeTimeSeries: one WriteRequest entry that the test decoder reads back exactly, multi-byte UTF-8 labels included', (t) => {
  const labels: [string, string][] = [['__name__', 'req_total'], ['path', '/ü/€'], ['zone', 'x'.repeat(200)]];
  const [s] = decodeWriteRequest(encodeTimeSeries(labels, 2.5, 1_700_000_000_123));
  t.same(s, { labels, value: 2.5, timestampMs: 1_700_000_000_123 });
  t.end();
});
