/**
 * The cached hot path (SampleFeed, through LogIngest) against the plain reading kept as an oracle
 * (`test/oracle.ts`, one `addSample` per sample): same windows, same counts, for any mix of lines and
 * for every drain fixture. Also the scanners it is built on against the regular expressions they
 * replaced, and the bounds of its caches.
 */
import t from 'tap';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Aggregator, type MetricBatch, type Sample } from '@metrics-distributor/core';
import { forEachRecord, type BodyFormat } from '../src/body.js';
import { LATE_LINES } from '../src/ingest.js';
import { LogfmtCursor, logfmt, parseUnitValue, type Pair } from '../src/logfmt.js';
import { parseSyslog } from '../src/logplex.js';
import { MAX_BASES } from '../src/feed.js';
import { MAX_CACHED } from '../src/slots.js';
import { MANIFEST, captureLogger, fixture, ingestInto, newAggregator } from './helpers.js';
import { extractLine } from './oracle.js';
import { RUNS, frame } from './fuzz/arbitraries.js';

/** The window as comparable text: every series and sketch, sorted. */
function windowOf(batch: MetricBatch): string[] {
  return [
    ...batch.series.map((s) => `${s.metric}|${s.type}|${s.value}|${s.host}|${[...s.tags].join(',')}`),
    ...batch.sketches.map((s) => `${s.metric}|sketch|${JSON.stringify(s.sketch)}|${s.host}|${[...s.tags].join(',')}`),
  ].sort();
}

/** The plain path: every record through the oracle's `extractLine`, every sample through `addSample`, in order. */
function reference(agg: Aggregator, body: Buffer, app: string | undefined, format: BodyFormat): { samples: number; bad: string[] } {
  const bad: string[] = [];
  let samples = 0;
  const base = app === undefined ? [] : [`app:${app}`];
  forEachRecord(body, format, 10240, {
    record(r) {
      const out: Sample[] = [];
      extractLine(r, base, out, (reason) => bad.push(reason));
      for (const s of out) agg.addSample(s);
      samples += out.length;
    },
    bad() {},
    tooLarge() {},
  });
  return { samples, bad };
}

function both(bodies: readonly Buffer[], app: string | undefined | readonly (string | undefined)[], opts: { maxContexts?: number; format?: BodyFormat } = {}) {
  const appOf = (i: number): string | undefined => (typeof app === 'object' ? app[i] : app);
  const format = opts.format ?? 'logplex';
  const mk = () => new Aggregator({ selfMetrics: false, hostname: 'h', countersAs: 'count', maxContexts: opts.maxContexts });
  const fastAgg = mk();
  const refAgg = mk();
  const stats = fastAgg.stats.component('http');
  const ingest = ingestInto(fastAgg, captureLogger('warn').logger);
  let fastSamples = 0;
  let refSamples = 0;
  const refBad: string[] = [];
  for (const [i, body] of bodies.entries()) {
    fastSamples += ingest.ingest(body, format, appOf(i)).samples;
    const r = reference(refAgg, body, appOf(i), format);
    refSamples += r.samples;
    refBad.push(...r.bad);
  }
  return {
    fast: windowOf(fastAgg.closeWindow()),
    ref: windowOf(refAgg.closeWindow()),
    fastSamples,
    refSamples,
    fastBad: stats.dropped('bad_value') + stats.dropped('bad_name'),
    refBad: refBad.length,
    fastDrops: fastAgg.stats.component('aggregator').dropped('max_contexts'),
    refDrops: refAgg.stats.component('aggregator').dropped('max_contexts'),
  };
}

const TS = '2013-07-22T00:06:26+00:00';

/** Values that merge (whole), that must not (fractions, huge), and that are bad. */
const value = fc.constantFrom('1', '2', '0', '-3', '0.5', '1e3', '2.25ms', '40MB', '9007199254740991', '1e300', '', 'x', '5ms!', '"7"', '"1\\"2"', '12ms', '3bytes', '7mb', '8mb');
/** Names that clean to the same name, carry a unit segment, or are bad. */
const name = fc.constantFrom('a', 'a_b', 'a%b', 'a.ms', 'lat', 'lat.ms', 'q', 'b/c', 'x'.repeat(201));
const appPair = fc.oneof(
  fc.tuple(fc.constantFrom('count#', 'sample#', 'measure#'), name, fc.option(value, { nil: undefined })).map(([k, n, v]) => (v === undefined ? `${k}${n}` : `${k}${n}=${v}`)),
  fc.constantFrom('source=web.1', 'source=web_1', 'source="web 1"', 'source=', 'unique#u=1', 'measure.old=1', 'plain', 'Error', 'x="a b"', '\tsource=worker.2'),
);
const appLine = fc.array(appPair, { minLength: 1, maxLength: 6 }).map((p) => `<190>1 ${TS} host app web.1 - ${p.join(' ')}`);
const routerLine = fc
  .tuple(
    fc.constantFrom('at=info', 'at=error', 'at=warn', 'at', 'at="info"', 'at="err\\or"', 'at=infos', ''),
    fc.constantFrom('method=GET', 'method=POST', 'method=BREW', 'method=', 'method', 'method="GET"', 'method="G\\ET"', ''),
    fc.constantFrom('status=200', 'status=404', 'status=999', 'status=20', 'status', 'status="5\\03"', ''),
    fc.constantFrom('dyno=web.1', 'dyno=web.2', 'dyno=run.5', 'dyno=x', 'dyno=', 'dyno', 'dyno="web.1"', ''),
    fc.constantFrom('connect=1ms', 'connect=0', 'connect=', 'connect=2s', 'connect="3ms"', 'connect=1e2ms', ''),
    fc.constantFrom('service=30ms', 'service=7', 'service=x', 'service=-1.5ms', 'service=7msx', ''),
    fc.constantFrom('bytes=100', 'bytes=5bytes', 'bytes=1kB', 'bytes="1\\2"', ''),
    fc.constantFrom('code=H12', 'code=X', 'code', 'code="H\\13"', ''),
    fc.constantFrom('path="/a b"', 'fwd="1.2.3.4"', 'status=500', 'at=error', 'path="/a\\"b status=201"', 'x=\t', ''),
  )
  .map((parts) => `<158>1 ${TS} host heroku router - ${parts.filter((p) => p !== '').join(' ')}`);
const otherLine = fc.constantFrom(
  `<45>1 ${TS} host heroku web.1 - source=web.1 sample#memory_total=5MB sample#a=2`,
  `<190>1 ${TS} host app web.1 - Error R14 (Memory quota exceeded) sample#q=9`,
  `<190>1 ${TS} host app web.1 - Error not a code sample#q=8 count#a=0.5`,
  `<134>1 ${TS} host app heroku-postgres - source=DATABASE sample#q=4`,
  `<172>1 ${TS} host heroku logplex - Error L10 (output buffer overflow): 7 messages dropped since x`,
);
const body = fc.array(fc.oneof({ weight: 3, arbitrary: appLine }, { weight: 3, arbitrary: routerLine }, { weight: 1, arbitrary: otherLine }), { maxLength: 30 }).map((lines) => Buffer.from(lines.map((l) => frame(l)).join('')));

t.test('any mix of lines: the window, sample and bad-value counts equal the plain path', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(body, fc.constantFrom(undefined, 'shop', 'a', 'b')), { minLength: 1, maxLength: 4 }), (pairs) => {
      const r = both(
        pairs.map(([b]) => b),
        pairs.map(([, base]) => base),
      );
      assert.deepEqual(r.fast, r.ref);
      assert.equal(r.fastSamples, r.refSamples);
      assert.equal(r.fastBad, r.refBad);
    }),
    { numRuns: RUNS * 3 },
  );
  t.pass();
});

t.test('a full context table: merged samples are each counted as dropped, as the plain path counts them', async (t) => {
  const lines = [];
  for (let i = 0; i < 20; i++) lines.push(frame(`<190>1 ${TS} host app web.1 - count#c${i % 5}=1 sample#g${i % 3}=${i} measure#m=${i}`));
  const r = both([Buffer.from(lines.join(''))], undefined, { maxContexts: 4 });
  t.same(r.fast, r.ref);
  t.ok(r.refDrops > 0);
  t.equal(r.fastDrops, r.refDrops);
});

t.test('every drain fixture: the window, sample and bad-value counts equal the plain path', async (t) => {
  const formats: Record<string, BodyFormat> = { logplex: 'logplex', txt: 'text', ndjson: 'ndjson', json: 'json' };
  for (const { file } of MANIFEST) {
    const format = formats[file.slice(file.lastIndexOf('.') + 1)];
    if (format === undefined) continue;
    const body = fixture(file);
    // Each fixture twice, so the second reading comes from the caches.
    const r = both([body, body], 'shop', { format });
    t.same(r.fast, r.ref, file);
    t.equal(r.fastSamples, r.refSamples, file);
    t.equal(r.fastBad, r.refBad, file);
  }
});

t.test('a counter that got a fraction is no longer merged in that window; gauges keep the last value', async (t) => {
  const agg = newAggregator();
  const ingest = ingestInto(agg, captureLogger('warn').logger);
  const line = (m: string) => frame(`<190>1 ${TS} host app web.1 - ${m}`);
  ingest.ingest(Buffer.from(line('count#n=1 sample#g=1') + line('count#n=0.1 sample#g=2') + line('count#n=2 sample#g=3')), 'logplex');
  ingest.ingest(Buffer.from(line('count#n=0.2') + line('count#n=3')), 'logplex');
  const batch = agg.closeWindow();
  const n = batch.series.find((s) => s.metric === 'n');
  t.equal(n?.value, 1 + 0.1 + 2 + 0.2 + 3, 'summed in arrival order, to the last bit');
  t.equal(batch.series.find((s) => s.metric === 'g')?.value, 3);
});

t.test('lines whose names, units or sources clean to one context keep their order', async (t) => {
  const line = (m: string) => `<190>1 ${TS} host app web.1 - ${m}`;
  const lines = [
    line('sample#g=1 source="web 1" sample#lat.ms=1 sample#a%b=1'),
    line('sample#g=2 source=web_1 sample#lat=2ms sample#a_b=2'),
    line('sample#g=3 source="web 1" sample#lat.ms=3 sample#a%b=3'),
    line('sample#g=4 source=web_1 sample#lat=4ms sample#a_b=4'),
    line('sample#g=5 source="web 1" sample#lat.ms=5 sample#a%b=5'),
  ];
  const r = both([Buffer.from(lines.map((l) => frame(l)).join(''))], undefined);
  t.same(r.fast, r.ref);
  t.ok(r.fast.some((s) => s.startsWith('g|gauge|5|')));
  t.ok(r.fast.some((s) => s.startsWith('lat|gauge|5|')));
  t.ok(r.fast.some((s) => s.startsWith('a_b|gauge|5|')));
});

t.test('the same keys in the same places with other units, sources, dynos and escapes', async (t) => {
  const app = (m: string) => `<190>1 ${TS} host app web.1 - ${m}`;
  const router = (m: string) => `<158>1 ${TS} host heroku router - at=info method=GET ${m}`;
  const lines = [
    app('measure#lat=1ms sample#q=1mb source=web.1'),
    app('measure#lat=2mb sample#q=2ms source=web.2'),
    app('measure#lat=3mx sample#q=3 source=web.10'),
    app('measure#lat=4ms sample#q=4mb source="web.1"'),
    app('measure#lat="5\\ms" sample#q=5mb source="web\\.1"'),
    app('count#lat=6ms sample#lat=6ms source=web.1'),
    router('dyno=web.1 status=200 connect=1ms service=2ms bytes=3'),
    router('dyno=web.11 status=200 connect=1ms service=2ms bytes=3'),
    router('dyno=web.1 status=201 connect=1ms service=2ms bytes=3'),
    router('dyno="web.1" status=200 connect="4ms" service=5ms bytes=6'),
    router('dyno=web.1 status=200 connect=7mx service=8bytes bytes=9ms'),
    `<158>1 ${TS} host heroku router - at=error code=H12 method=POST dyno=web.1 status=503 connect=0ms service=30000ms bytes=0`,
    `<158>1 ${TS} host heroku router - at=error code="H\\13" method=POST dyno=web.1 status=503`,
    router(`dyno=web.${'1'.repeat(200)} status=200 connect=1ms`),
    router(`dyno=${'w'.repeat(150)}.1 status=200 connect=2ms`),
    router('status=200 connect=3ms'),
    app(`count#n=1 source=${'s'.repeat(300)}`),
    app(`count#n=1 source=${'s'.repeat(100)}`),
    app(`count#n=1 source=${'s'.repeat(129)}x`),
  ];
  for (const app of [undefined, 'shop']) {
    const r = both([Buffer.from(lines.map((l) => frame(l)).join('')), Buffer.from(lines.reverse().map((l) => frame(l)).join(''))], app);
    t.same(r.fast, r.ref);
    t.equal(r.fastBad, r.refBad);
    t.equal(r.fastSamples, r.refSamples);
  }
});

t.test('caches stay bounded: many dynos, many names, many apps', async (t) => {
  const agg = new Aggregator({ selfMetrics: false, hostname: 'h', countersAs: 'count', maxContexts: 1_000_000 });
  const ingest = ingestInto(agg, captureLogger('warn').logger);
  const n = MAX_CACHED + 100;
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    lines.push(frame(`<158>1 ${TS} host heroku router - at=info method=GET dyno=web.${i} status=200 connect=1ms`));
    lines.push(frame(`<190>1 ${TS} host app web.1 - count#c${i}=1`));
  }
  ingest.ingest(Buffer.from(lines.join('')), 'logplex');
  for (let a = 0; a < MAX_BASES + 5; a++) ingest.ingest(Buffer.from(lines.slice(0, 4).join('')), 'logplex', `a${a}`);
  const feed = (ingest as unknown as { feed: { routers: { size: number }; apps: { size: number }; bases: Map<string, unknown> } }).feed;
  t.ok(feed.routers.size <= MAX_CACHED, `router cache ${feed.routers.size}`);
  t.ok(feed.apps.size <= MAX_CACHED, `slot cache ${feed.apps.size}`);
  t.ok(feed.bases.size <= MAX_BASES, `bases ${feed.bases.size}`);
  const batch = agg.closeWindow();
  const requests = batch.series.filter((s) => s.metric === 'heroku.router.request').reduce((a, s) => a + s.value, 0);
  t.equal(requests, n + (MAX_BASES + 5) * 2, 'every line counted across cache evictions');
});

t.test('timestamps: a repeated stamp is read once, but every different one is still parsed and checked for lateness', async (t) => {
  const agg = newAggregator();
  const stats = agg.stats.component('http');
  const ingest = ingestInto(agg, captureLogger('warn').logger);
  const start = agg.currentWindowStart;
  const iso = (ms: number) => new Date(ms).toISOString().replace('Z', '+00:00');
  // Same length, one character apart: only the late ones count.
  const stamps = [start, start, start - 1000, start - 1000, start, start + 1000, start - 1000, '-', start];
  const body = stamps.map((s) => frame(`<190>1 ${typeof s === 'string' ? s : iso(s)} host app web.1 - count#x=1`)).join('');
  ingest.ingest(Buffer.from(body), 'logplex');
  t.equal(stats.counter(LATE_LINES), 3);
  ingest.ingest(Buffer.from(frame(`<190>1 ${iso(start - 1000)} host app web.1 - count#x=1`)), 'logplex');
  t.equal(stats.counter(LATE_LINES), 4, 'the cached stamp is still late in the next body');
  ingest.ingest(Buffer.from(frame(`<190>1 ${iso(start - 1000).replace('+00:00', '-01:00')} host app web.1 - count#x=1`)), 'logplex');
  t.equal(stats.counter(LATE_LINES), 4, 'another zone is another stamp: an hour later, not late');
});

t.test('timestamps: bytes that are not UTF-8 or not ASCII are compared as the bytes they are', async (t) => {
  const agg = newAggregator();
  const stats = agg.stats.component('http');
  const ingest = ingestInto(agg, captureLogger('warn').logger);
  const start = agg.currentWindowStart;
  const late = new Date(start - 1000).toISOString().replace('Z', '+00:00');
  const frameBytes = (stamp: Buffer, rest: string) => {
    const msg = Buffer.concat([Buffer.from('<190>1 '), stamp, Buffer.from(` ${rest}`)]);
    return Buffer.concat([Buffer.from(`${msg.length} `), msg]);
  };
  const bad = Buffer.from([0xc3]);
  const body = Buffer.concat([
    frameBytes(bad, 'h app web.1 - count#x=1'),
    frameBytes(Buffer.from([0xc3, 0x20, 0x68]), 'app web.1 - count#x=1'),
    frameBytes(Buffer.from(late), 'h app web.1 - count#x=1'),
    frameBytes(Buffer.from(`${late}é`), 'h app web.1 - count#x=1'),
    frameBytes(bad, 'h app web.1 - count#x=1'),
    frameBytes(Buffer.from(late), 'h app web.1 - count#x=1'),
  ]);
  const r = ingest.ingest(body, 'logplex');
  t.equal(r.parsed, 6);
  t.equal(stats.counter(LATE_LINES), 2, 'only the two well-formed late stamps');
});

// ---------------------------------------------------------------- the scanners against what they replaced

/** The tokeniser before LogfmtCursor, kept as the reference. */
function logfmtReference(line: string): Pair[] {
  const out: Pair[] = [];
  const n = line.length;
  let i = 0;
  while (i < n) {
    while (i < n && (line[i] === ' ' || line[i] === '\t')) i++;
    if (i >= n) break;
    const keyStart = i;
    while (i < n && line[i] !== '=' && line[i] !== ' ' && line[i] !== '\t') i++;
    const key = line.slice(keyStart, i);
    if (line[i] !== '=') {
      if (key.length > 0) out.push({ key, value: undefined });
      continue;
    }
    i++;
    let value: string;
    if (line[i] === '"') {
      i++;
      let v = '';
      let chunk = i;
      while (i < n && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < n) {
          v += line.slice(chunk, i);
          chunk = i + 1;
          i += 2;
          continue;
        }
        i++;
      }
      value = v + line.slice(chunk, i);
      if (i < n) i++;
    } else {
      const valueStart = i;
      while (i < n && line[i] !== ' ' && line[i] !== '\t') i++;
      value = line.slice(valueStart, i);
    }
    if (key.length > 0) out.push({ key, value });
  }
  return out;
}

const VALUE_RE = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)([A-Za-z%]*)$/;
function parseUnitValueReference(raw: string): { value: number; unit: string | undefined } | undefined {
  const m = VALUE_RE.exec(raw);
  if (m === null) return undefined;
  const v = Number(m[1]);
  if (!Number.isFinite(v) || m[2]!.length > 24) return undefined;
  return { value: v, unit: m[2]!.length > 0 ? m[2] : undefined };
}

function parseSyslogReference(line: string) {
  const m = /^<(\d{1,3})>\d{1,2} /.exec(line);
  if (m === null) return undefined;
  const pri = Number(m[1]);
  if (pri > 191) return undefined;
  const fields: string[] = [];
  let i = m[0].length;
  for (let f = 0; f < 5; f++) {
    const sp = line.indexOf(' ', i);
    const end = sp < 0 ? line.length : sp;
    if (end === i) return undefined;
    fields.push(line.slice(i, end));
    i = sp < 0 ? line.length : sp + 1;
    if (sp < 0 && f < 4) return undefined;
  }
  let msg = line.slice(i);
  if (msg === '-') msg = '';
  else if (msg.startsWith('- ')) msg = msg.slice(2);
  const [timestamp, hostname, appName, procId, msgId] = fields as [string, string, string, string, string];
  return { pri, timestamp, hostname, appName, procId, msgId, msg };
}

t.test('logfmt on LogfmtCursor reads every line as the character-by-character tokeniser did', async (t) => {
  const text = fc.string({ unit: fc.constantFrom('a', 'b', '=', ' ', '\t', '"', '\\', '#', '1', 'é'), maxLength: 40 });
  fc.assert(fc.property(text, (line) => assert.deepEqual(logfmt(line), logfmtReference(line))), { numRuns: RUNS * 20 });
  t.pass();
});

t.test('LogfmtCursor.next(expected) reads the same pairs as next(), whatever key is expected', async (t) => {
  const text = fc.string({ unit: fc.constantFrom('a', 'b', '=', ' ', '\t', '"', '\\', '#', '1'), maxLength: 30 });
  const expected = fc.array(fc.option(fc.string({ unit: fc.constantFrom('a', 'b', '#', '1', '"', '\\'), minLength: 1, maxLength: 4 }), { nil: undefined }), { maxLength: 8 });
  const walk = (line: string, keys: readonly (string | undefined)[]) => {
    const c = new LogfmtCursor().reset(line);
    const out: [string, string | undefined, boolean][] = [];
    for (let i = 0; c.next(keys[i]); i++) {
      out.push([c.key(), c.value(), c.matched]);
      if (c.matched) assert.equal(c.key(), keys[i]);
    }
    return out.map(([k, v]) => [k, v]);
  };
  fc.assert(fc.property(text, expected, (line, keys) => assert.deepEqual(walk(line, keys), walk(line, []))), { numRuns: RUNS * 20 });
  t.pass();
});

t.test('parseUnitValue without a regex accepts and reads exactly what the regex did', async (t) => {
  const raw = fc.oneof(
    fc.string({ unit: fc.constantFrom('1', '0', '9', '.', 'e', 'E', '+', '-', 'm', 's', '%', 'B', ',', ' ', 'x'), maxLength: 12 }),
    fc.double().map(String),
    fc.tuple(fc.stringMatching(/^[0-9]{1,25}$/), fc.stringMatching(/^[A-Za-z%]{0,30}$/)).map(([a, b]) => a + b),
  );
  fc.assert(fc.property(raw, (r) => assert.deepEqual(parseUnitValue(r), parseUnitValueReference(r))), { numRuns: RUNS * 20 });
  for (const r of ['1e', '1e+', '1e5x', '.e5', '1.', '.5', '-.5e-3ms', '007', '1e400', '123456789012345678', `1${'a'.repeat(25)}`]) {
    t.same(parseUnitValue(r), parseUnitValueReference(r), r);
  }
});

t.test('parseSyslog without a regex accepts and splits exactly what the regex did', async (t) => {
  const line = fc.oneof(
    fc.string({ unit: fc.constantFrom('<', '>', '1', '9', '0', ' ', '-', 'a', 'T'), maxLength: 30 }),
    fc
      .tuple(fc.constantFrom('<1>', '<191>', '<192>', '<0001>', '<>', '<12>'), fc.constantFrom('1 ', '12 ', '123 ', ' ', '1'), fc.array(fc.constantFrom('x', '-', '', 'ab'), { maxLength: 7 }), fc.constantFrom('', ' ', ' - ', ' -', ' - x'))
      .map(([a, b, f, c]) => a + b + f.join(' ') + c),
  );
  fc.assert(fc.property(line, (l) => assert.deepEqual(parseSyslog(l), parseSyslogReference(l))), { numRuns: RUNS * 20 });
  t.pass();
});
