import t from 'tap';
import { LATE_LINES } from '../src/ingest.js';
import { c, captureLogger, flat, g, h1, ingestInto, newAggregator, sorted } from './helpers.js';

function setup(maxLineBytes = 10240) {
  const agg = newAggregator();
  const log = captureLogger('info');
  const stats = agg.stats.component('http');
  return { agg, log, stats, ingest: ingestInto(agg, log.logger, maxLineBytes) };
}

const frame = (msg: string) => `${Buffer.byteLength(msg) + 1} ${msg}\n`;

t.test('counts: every frame received once, then parsed, bad or dropped; bad values dropped by reason', async (t) => {
  const s = setup(200);
  const body = Buffer.from(
    frame('<190>1 2013-07-22T00:06:26+00:00 host app web.1 - count#a=1 count#b=oops sample#c=') +
      'junk line\n' +
      frame(`<190>1 2013-07-22T00:06:26+00:00 host app web.1 - ${'x'.repeat(300)}`) +
      frame('<190>1 2013-07-22T00:06:26+00:00 host app web.1 - plain text'),
  );
  const r = s.ingest.ingest(body, 'logplex', 'shop');
  t.same(r, { frames: 4, parsed: 2, samples: 1 });
  t.same([s.stats.received, s.stats.parsed, s.stats.bad], [4, 2, 1]);
  t.same([s.stats.dropped('frame_too_large'), s.stats.dropped('bad_value')], [1, 2]);
  t.same(flat(s.agg.closeWindow()), [c('a', 1, ['app:shop'])]);
});

t.test('late lines: stamped before the open window, aggregated in it and counted as late_lines', async (t) => {
  const s = setup();
  const windowStart = s.agg.currentWindowStart;
  const iso = (ms: number) => new Date(ms).toISOString().replace('Z', '+00:00');
  const body = Buffer.from(
    frame(`<190>1 ${iso(windowStart - 1)} host app web.1 - count#late=1`) +
      frame(`<190>1 ${iso(windowStart)} host app web.1 - count#ontime=1`) +
      frame(`<190>1 ${iso(windowStart + 3_600_000)} host app web.1 - count#future=1`) +
      frame('<190>1 - host app web.1 - count#undated=1'),
  );
  s.ingest.ingest(body, 'logplex');
  t.equal(s.ingest.lateLines, 1, 'only the line before the window start');
  t.equal(s.agg.stats.component('http').counter(LATE_LINES), 1);
  const batch = s.agg.closeWindow();
  t.same(flat(batch), sorted([c('late', 1, []), c('ontime', 1, []), c('future', 1, []), c('undated', 1, [])]), 'all four land in the open window');
  t.ok(batch.series.every((x) => x.timestamp === windowStart / 1000));
});

t.test('text, ndjson and json bodies go through the same extraction', async (t) => {
  const s = setup();
  s.ingest.ingest(Buffer.from('sample#q=3\nmeasure#t=7ms\n'), 'text');
  s.ingest.ingest(Buffer.from('{"message":"count#n=2"}\n'), 'ndjson');
  s.ingest.ingest(Buffer.from('[{"message":"count#n=5 source=web.2"}]'), 'json');
  t.same(flat(s.agg.closeWindow()), sorted([g('q', 3, []), h1('t', 7, ['unit:ms']), c('n', 2, []), c('n', 5, ['source:web.2'])]));
  t.equal(s.stats.received, 4);
});

t.test('bad lines are logged rate-limited (one warn), each one only at debug', async (t) => {
  const s = setup();
  s.ingest.ingest(Buffer.from('garbage one\ngarbage two\ngarbage three\n'), 'logplex');
  t.equal(s.stats.bad, 3);
  const warns = s.log.lines.filter((l) => l.level === 40);
  t.equal(warns.length, 1, 'one warning for three bad lines');
  t.match(warns[0], { reason: 'bad_frame', line: 'garbage one', msg: /metrics_distributor\.bad/ });
  t.equal(s.log.lines.filter((l) => l.level === 20).length, 0, 'per-line debug lines are off at info');
  const d = setup();
  const dbg = captureLogger('debug');
  const ingest = ingestInto(d.agg, dbg.logger);
  ingest.ingest(Buffer.from('garbage one\ngarbage two\n'), 'logplex');
  t.equal(dbg.lines.filter((l) => l.level === 20 && l.msg === 'Bad log line.').length, 2, 'one debug line per bad line');
});
