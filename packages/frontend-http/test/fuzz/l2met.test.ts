/**
 * Property-based fuzzing of l2met extraction: the logfmt tokeniser, the oracle's `extractL2met` (which
 * production is checked against in feed.test.ts) and production's per-line reading of any line,
 * alone and through a real aggregator.
 */
import t from 'tap';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Sample } from '@metrics-distributor/core';
import type { L2metKind } from '../../src/heroku-metrics.js';
import { logfmt } from '../../src/logfmt.js';
import { lineSamples } from '../helpers.js';
import { extractL2met } from '../oracle.js';
import { RUNS, SENTINEL, newIngest } from './arbitraries.js';

/** Names as the README promises them: only `A-Za-z0-9_.-/`, at most 200 characters after the prefix. */
const NAME_OK = /^[A-Za-z0-9_.\-/]{1,230}$/;
/** Tags: `key:value`, value cut to 100 characters of `A-Za-z0-9_.-/%`. */
const TAG_OK = /^[a-z_]+:[A-Za-z0-9_.\-/%]{1,100}$/;
const NAME_UNITS = new Set(['ms', 's', 'us', 'ns', 'bytes', 'kB', 'KB', 'MB', 'GB']);

/** Any text, including astral characters, quotes, `=`, `#` and tabs. */
const anyText = fc.oneof(fc.string({ maxLength: 300, unit: 'grapheme' }), fc.string({ maxLength: 300, unit: 'binary' }), fc.stringMatching(/^[ \t=#"\\a-z0-9.-]{0,200}$/));

function checkSample(s: Sample): void {
  assert.match(s.name, NAME_OK, `name ${JSON.stringify(s.name)}`);
  assert.ok(Number.isFinite(s.value), `${s.name} value ${s.value} is finite`);
  assert.ok(['c', 'g', 'ms', 'h'].includes(s.type), `type ${s.type}`);
  for (const tg of s.tags ?? []) assert.match(tg, TAG_OK, `tag ${JSON.stringify(tg)}`);
}

t.test('logfmt: never throws; keys are non-empty and hold no =, SP or TAB', async (t) => {
  fc.assert(
    fc.property(anyText, (line) => {
      for (const p of logfmt(line)) {
        assert.ok(p.key.length > 0);
        assert.doesNotMatch(p.key, /[= \t]/);
      }
    }),
    { numRuns: RUNS * 5 },
  );
  t.pass();
});

/** One well-formed l2met metric and how it is written. */
const metric = fc
  .record({
    kind: fc.constantFrom<L2metKind>('count', 'sample', 'measure'),
    name: fc.stringMatching(/^[A-Za-z0-9_\-/:!]{1,40}(\.[A-Za-z0-9_-]{1,8}){0,2}$/),
    value: fc.oneof(fc.integer({ min: -1e9, max: 1e9 }), fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e300, max: 1e300 })),
    unit: fc.option(fc.stringMatching(/^[A-Za-fh-z%][A-Za-z%]{0,10}$/), { nil: undefined }),
  })
  // `-0` is written `0` and read back as 0, so generate 0 only.
  .map((m) => ({ ...m, value: m.value + 0, text: `${m.kind}#${m.name}=${String(m.value)}${m.unit ?? ''}` }));

/** What the README says becomes of a written metric: unsafe characters to `_`, a trailing unit segment moved to the unit. */
function expected(m: { kind: L2metKind; name: string; value: number; unit: string | undefined }) {
  let name = m.name.replace(/[^A-Za-z0-9_.\-/]/g, '_');
  let unit = m.unit;
  if (unit === undefined) {
    const dot = name.lastIndexOf('.');
    const suffix = dot > 0 ? name.slice(dot + 1) : '';
    if (NAME_UNITS.has(suffix)) {
      name = name.slice(0, dot);
      unit = suffix;
    }
  }
  return { kind: m.kind, name, value: m.value, unit };
}

t.test('round trip: well-formed metrics on one line come back exactly, in order', async (t) => {
  fc.assert(
    fc.property(fc.array(metric, { minLength: 1, maxLength: 8 }), fc.option(fc.stringMatching(/^[a-z0-9.]{1,12}$/), { nil: undefined }), (metrics, source) => {
      const line = [...(source === undefined ? [] : [`source=${source}`]), ...metrics.map((m) => m.text)].join(' ');
      const bad: string[] = [];
      const got = extractL2met(logfmt(line), (r) => bad.push(r));
      assert.deepEqual(bad, []);
      assert.equal(got.source, source);
      assert.deepEqual(got.metrics, metrics.map(expected));
    }),
    { numRuns: RUNS * 3 },
  );
  t.pass();
});

t.test('a bad pair between good ones: the good ones are all extracted, the bad one is a metric or one onBad, never both', async (t) => {
  // The bad value is anything without whitespace that does not open a quote (which would swallow the rest).
  const garbage = fc.oneof(fc.string({ maxLength: 60, unit: 'binary' }), fc.stringMatching(/^[0-9a-z.,!%+eE-]{0,20}$/)).map((s) => s.replace(/[\s"]/g, ''));
  const badKey = fc.oneof(fc.constantFrom('count#', 'sample#', 'measure#'), fc.constant('count#x'), fc.constant('measure#' + 'y'.repeat(250)), fc.string({ maxLength: 30 }).map((s) => `sample#${s.replace(/[\s="]/g, '')}`));
  fc.assert(
    fc.property(fc.array(metric, { minLength: 1, maxLength: 4 }), badKey, fc.option(garbage, { nil: undefined }), fc.array(metric, { minLength: 1, maxLength: 4 }), (before, key, value, after) => {
      const bad = value === undefined ? key : `${key}=${value}`;
      const line = [...before.map((m) => m.text), bad, ...after.map((m) => m.text)].join(' ');
      const reasons: string[] = [];
      const got = extractL2met(logfmt(line), (r) => reasons.push(r));
      const good = [...before, ...after].map(expected);
      assert.equal(got.metrics.length + reasons.length, good.length + 1, line);
      const middle = got.metrics.length - good.length;
      assert.deepEqual(got.metrics.slice(0, before.length), good.slice(0, before.length));
      assert.deepEqual(got.metrics.slice(before.length + middle), good.slice(before.length));
    }),
    { numRuns: RUNS * 3 },
  );
  t.pass();
});

t.test('production: any line under any app/proc id never throws; names, values and tags stay within the rules', async (t) => {
  const procs = fc.constantFrom(undefined, 'router', 'logplex', 'web.1', 'run.1234', 'heroku-postgres', 'heroku-redis', 'heroku-pgbouncer', 'worker.99999999');
  const apps = fc.constantFrom(undefined, 'heroku', 'app');
  const herokuish = fc
    .array(
      fc.oneof(
        fc.constantFrom('at=info', 'at=error', 'code=H12', 'method=GET', 'method=BREW', 'status=503', 'status=5000', 'dyno=web.1', 'dyno=run.77', 'source=web.2', 'addon=postgresql-x', 'source=DATABASE', 'Error L10 (output buffer overflow):', 'Error R14 (Memory quota exceeded)', 'messages dropped since', 'dropped'),
        fc.tuple(fc.constantFrom('connect', 'service', 'bytes', 'sample#memory_total', 'sample#load-avg-1m', 'count#c', 'measure#m', 'sample#s', 'dyno', 'source', 'addon', 'status'), anyText).map(([k, v]) => `${k}=${v.replace(/\s/g, '')}`),
        fc.bigInt({ min: 0n, max: 10n ** 400n }).map(String),
        anyText,
      ),
      { maxLength: 12 },
    )
    .map((parts) => parts.join(' '));
  // Logplex's own L10 lines with counts of any length (400 digits overflowed to Infinity before the fix).
  const l10 = fc
    .tuple(fc.constantFrom('Error L10 (output buffer overflow): ', "Error L10 (output buffer overflow): drain 'd' dropped "), fc.bigInt({ min: 0n, max: 10n ** 400n }), fc.constantFrom(' messages dropped since 2013-04-17T19:04:46+00:00.', ' messages since x'))
    .map(([a, n, b]) => a + String(n) + b);
  fc.assert(
    fc.property(apps, procs, fc.oneof(anyText, herokuish, l10), fc.constantFrom(undefined, 'shop', 'x'), (appName, procId, msg, app) => {
      const { added, bad } = lineSamples({ appName, procId, msg }, app);
      for (const a of added) checkSample(a.sample);
      for (const [r] of bad) assert.ok(r === 'bad_value' || r === 'bad_name');
    }),
    { numRuns: RUNS * 10 },
  );
  t.pass();
});

t.test('through the aggregator: random app lines between sentinel lines never cost a sentinel', async (t) => {
  fc.assert(
    fc.property(fc.array(anyText.map((s) => s.replace(/\n/g, ' ')), { minLength: 1, maxLength: 10 }), (lines) => {
      const ing = newIngest();
      const sentinel = `count#${SENTINEL}=1`;
      const body = Buffer.from(lines.map((l) => `${sentinel}\n${l}\n`).join('') + sentinel);
      ing.ingest(body, 'text');
      const r = ing.close();
      assert.equal(r.sentinel, lines.length + 1);
      assert.ok(r.balanced);
    }),
    { numRuns: RUNS * 2 },
  );
  t.pass();
});
