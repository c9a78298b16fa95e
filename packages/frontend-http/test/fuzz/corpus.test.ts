/**
 * Replays `corpus/*.json`: inputs the fuzz tests found failing (each file says what failed and where
 * it was fixed), plus a few seeds. Each is POSTed through `inject()` and its status, sentinel total,
 * series and cost are checked. Add a file here for every new failure the properties find.
 *
 * A body is a list of parts: a string; `{ repeat, times }`; `{ frame, delta?, suffix?, times? }` (a
 * logplex frame, count off by `delta`); `{ gzip: parts, cut? }` (gzipped, minus `cut` trailing bytes).
 */
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { SENTINEL, frame } from './arbitraries.js';
import { setup } from '../helpers.js';

type Part = string | { repeat: string; times: number } | { frame: string; delta?: number; suffix?: string; times?: number } | { gzip: Part[]; cut?: number };

interface Entry {
  found: string;
  url: string;
  headers: Record<string, string>;
  body: Part[];
  expect: {
    status: number;
    sentinel?: number;
    maxMs?: number;
    /** Sum of every series of each metric. */
    series?: Record<string, number>;
    absent?: string[];
    aggregatorDropped?: Record<string, number>;
  };
}

const DIR = fileURLToPath(new URL('./corpus/', import.meta.url));

function build(parts: Part[]): Buffer {
  return Buffer.concat(
    parts.map((p) => {
      if (typeof p === 'string') return Buffer.from(p);
      if ('repeat' in p) return Buffer.from(p.repeat.repeat(p.times));
      if ('frame' in p) return Buffer.from(frame(p.frame, p.suffix ?? '\n', p.delta ?? 0).repeat(p.times ?? 1));
      const z = gzipSync(build(p.gzip));
      return z.subarray(0, z.length - (p.cut ?? 0));
    }),
  );
}

const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

t.test('the corpus is not empty', async (t) => {
  t.ok(files.length >= 5);
});

for (const file of files) {
  t.test(file, async (t) => {
    const e = JSON.parse(readFileSync(DIR + file, 'utf8')) as Entry;
    t.comment(e.found);
    const { agg, fe, stats } = setup(t, {}, 'warn');
    const payload = build(e.body);
    const started = performance.now();
    const res = await fe.server.inject({ method: 'POST', url: e.url, headers: e.headers, payload });
    const ms = performance.now() - started;
    t.equal(res.statusCode, e.expect.status, res.body);
    if (e.expect.maxMs !== undefined) t.ok(ms < e.expect.maxMs, `${ms.toFixed(0)} ms (bound ${e.expect.maxMs} ms)`);
    const series = agg.closeWindow().series;
    const sum = (metric: string) => series.filter((s) => s.metric === metric).reduce((n, s) => n + s.value, 0);
    if (e.expect.sentinel !== undefined) t.equal(sum(SENTINEL), e.expect.sentinel, 'sentinel total');
    for (const [metric, value] of Object.entries(e.expect.series ?? {})) t.equal(sum(metric), value, metric);
    for (const metric of e.expect.absent ?? []) t.notOk(series.some((s) => s.metric === metric), `no ${metric}`);
    for (const [reason, n] of Object.entries(e.expect.aggregatorDropped ?? {})) t.equal(agg.stats.component('aggregator').dropped(reason), n, `aggregator dropped{reason:${reason}}`);
    t.ok(series.every((s) => Number.isFinite(s.value)), 'every value finite');
    t.equal(stats.dropped('internal_error'), 0);
  });
}
