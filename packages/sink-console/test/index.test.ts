import t from 'tap';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { AgentSketch, Aggregator, MdError, type MetricBatch, type SketchData } from '@metrics-distributor/core';
import { ConsoleSink } from '../src/index.js';

/** A Writable collecting everything; `delayMs` makes each chunk slow to simulate a slow reader. */
function collector(opts: { highWaterMark?: number; delayMs?: number; isTTY?: boolean; fail?: Error } = {}) {
  const chunks: string[] = [];
  const stream = new Writable({
    highWaterMark: opts.highWaterMark ?? 16 * 1024,
    decodeStrings: false,
    write(chunk: string | Buffer, _enc, cb) {
      const done = () => {
        if (opts.fail !== undefined) return cb(opts.fail);
        chunks.push(chunk.toString());
        cb();
      };
      if (opts.delayMs !== undefined) setTimeout(done, opts.delayMs);
      else done();
    },
  });
  if (opts.isTTY !== undefined) Object.assign(stream, { isTTY: opts.isTTY });
  return { stream, chunks, text: () => chunks.join('') };
}

function sketchOf(values: number[]): SketchData {
  const s = new AgentSketch();
  for (const v of values) s.insert(v);
  return s.toData();
}

const WINDOW_MS = Date.UTC(2024, 0, 2, 3, 4, 10);
const TS = WINDOW_MS / 1000;

function handBatch(): MetricBatch {
  return {
    windowStartMs: WINDOW_MS,
    intervalMs: 10_000,
    series: [
      { metric: 'req.count', type: 'count', timestamp: TS, value: 12, interval: 10, tags: ['env:prod', 'svc:api'], host: 'web-1' },
      { metric: 'req.rate', type: 'rate', timestamp: TS, value: 1.2, interval: 10, tags: [], host: 'web-1' },
      { metric: 'mem.used', type: 'gauge', timestamp: TS, value: 512.5, interval: 10, tags: ['env:prod'], host: '' },
    ],
    sketches: [{ metric: 'lat', timestamp: TS, interval: 10, tags: ['svc:api'], host: 'web-1', sketch: sketchOf([5, 5, 5]) }],
    events: [
      {
        title: 'Deploy',
        text: 'v1.2\nrolled out',
        timestampS: TS + 1,
        host: 'web-1',
        aggregationKey: 'deploy-42',
        priority: 'low',
        sourceType: 'jenkins',
        alertType: 'success',
        tags: ['env:prod'],
      },
      { title: 'Bare', text: 'x', timestampS: TS + 2, priority: 'normal', alertType: 'info', tags: [] },
    ],
    serviceChecks: [
      { name: 'db.up', status: 2, timestampS: TS + 3, host: 'db-1', message: 'connection refused', tags: ['env:prod'] },
      { name: 'cache.up', status: 0, timestampS: TS + 4, tags: [] },
    ],
  };
}

t.test('JSON lines: exact output for every kind', async (t) => {
  const out = collector();
  const sink = new ConsoleSink({ format: 'json', stream: out.stream });
  t.equal(sink.name, 'console');
  t.equal(sink.format, 'json');
  t.same(await sink.export(handBatch()), { code: 'success' });
  t.equal(
    out.text(),
    [
      `{"metric":"req.count","type":"count","timestamp":${TS},"value":12,"interval":10,"tags":["env:prod","svc:api"],"host":"web-1"}`,
      `{"metric":"req.rate","type":"rate","timestamp":${TS},"value":1.2,"interval":10,"tags":[],"host":"web-1"}`,
      `{"metric":"mem.used","type":"gauge","timestamp":${TS},"value":512.5,"interval":10,"tags":["env:prod"],"host":""}`,
      `{"metric":"lat","type":"distribution","timestamp":${TS},"interval":10,"tags":["svc:api"],"host":"web-1","count":3,"min":5,"max":5,"avg":5,"p50":5,"p95":5,"p99":5}`,
      `{"kind":"event","title":"Deploy","text":"v1.2\\nrolled out","timestampS":${TS + 1},"host":"web-1","aggregationKey":"deploy-42","priority":"low","sourceType":"jenkins","alertType":"success","tags":["env:prod"]}`,
      `{"kind":"event","title":"Bare","text":"x","timestampS":${TS + 2},"priority":"normal","alertType":"info","tags":[]}`,
      `{"kind":"service_check","name":"db.up","status":2,"timestampS":${TS + 3},"host":"db-1","message":"connection refused","tags":["env:prod"]}`,
      `{"kind":"service_check","name":"cache.up","status":0,"timestampS":${TS + 4},"tags":[]}`,
      '',
    ].join('\n'),
  );
  t.equal(out.chunks.length, 1, 'one write per batch');
});

t.test('JSON lines from a real aggregator window', async (t) => {
  let now = WINDOW_MS + 1234;
  const agg = new Aggregator({ hostname: 'h', selfMetrics: false, flushIntervalMs: 10_000, now: () => now });
  agg.increment('hits', 5, ['b:2', 'a:1']);
  agg.increment('hits', 15, ['a:1', 'b:2']);
  agg.gauge('temp', 21.5, ['host:sensor-7']);
  agg.set('users', 'alice');
  agg.set('users', 'bob');
  agg.set('users', 'alice');
  for (let v = 1; v <= 100; v++) agg.distribution('resp', v);
  agg.ingestStatsd(Buffer.from('_e{6,5}:Deploy|hello|p:low|#team:core\n_sc|db.up|1|m:slow\n'));
  now += 10_000;
  const batch = agg.closeWindow();

  const out = collector();
  const sink = new ConsoleSink({ format: 'json', stream: out.stream });
  t.same(await sink.export(batch), { code: 'success' });
  const lines = out.text().trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const byMetric = (m: string) => lines.filter((l) => l.metric === m);
  t.same(byMetric('hits'), [{ metric: 'hits', type: 'rate', timestamp: TS, value: 2, interval: 10, tags: ['a:1', 'b:2'], host: 'h' }]);
  t.same(byMetric('temp'), [{ metric: 'temp', type: 'gauge', timestamp: TS, value: 21.5, interval: 10, tags: [], host: 'sensor-7' }]);
  t.same(byMetric('users'), [{ metric: 'users', type: 'gauge', timestamp: TS, value: 2, interval: 10, tags: [], host: 'h' }]);
  const [resp] = byMetric('resp');
  t.match(resp, { metric: 'resp', type: 'distribution', timestamp: TS, interval: 10, tags: [], host: 'h', count: 100, min: 1, max: 100, avg: 50.5 });
  t.same(Object.keys(resp!), ['metric', 'type', 'timestamp', 'interval', 'tags', 'host', 'count', 'min', 'max', 'avg', 'p50', 'p95', 'p99']);
  t.same(
    lines.filter((l) => l.kind !== undefined),
    [
      { kind: 'event', title: 'Deploy', text: 'hello', timestampS: TS + 1, host: 'h', priority: 'low', alertType: 'info', tags: ['team:core'] },
      { kind: 'service_check', name: 'db.up', status: 1, timestampS: TS + 1, host: 'h', message: 'slow', tags: [] },
    ],
  );
  for (const l of lines) {
    if (l.kind === undefined) t.same(Object.keys(l).slice(0, 3), ['metric', 'type', 'timestamp'], `${String(l.metric)}: fixed key order`);
  }
});

t.test('distribution percentiles come from the sketch and are close to the exact ones', async (t) => {
  const values = Array.from({ length: 1000 }, (_, i) => i + 1);
  const out = collector();
  const sink = new ConsoleSink({ format: 'json', stream: out.stream });
  const batch: MetricBatch = {
    windowStartMs: WINDOW_MS,
    intervalMs: 10_000,
    series: [],
    sketches: [{ metric: 'd', timestamp: TS, interval: 10, tags: [], host: 'h', sketch: sketchOf(values) }],
    events: [],
    serviceChecks: [],
  };
  await sink.export(batch);
  const line = JSON.parse(out.text()) as Record<string, number>;
  t.equal(line.count, 1000);
  t.equal(line.min, 1);
  t.equal(line.max, 1000);
  t.equal(line.avg, 500.5);
  for (const [k, exact] of [
    ['p50', 500],
    ['p95', 950],
    ['p99', 990],
  ] as const) {
    const got = line[k]!;
    t.ok(Math.abs(got - exact) / exact < 0.02, `${k} = ${got} is within 2% of ${exact}`);
  }
  t.ok(line.p50! < line.p95! && line.p95! < line.p99!, 'percentiles increase');
});

t.test('an empty window writes nothing in JSON mode', async (t) => {
  const out = collector();
  const sink = new ConsoleSink({ format: 'json', stream: out.stream });
  t.same(await sink.export({ windowStartMs: WINDOW_MS, intervalMs: 10_000, series: [], sketches: [], events: [], serviceChecks: [] }), { code: 'success' });
  t.equal(out.chunks.length, 0);
});

t.test('table mode: header with the window time, aligned columns, values, events and checks', async (t) => {
  const out = collector();
  const sink = new ConsoleSink({ format: 'table', stream: out.stream });
  t.same(await sink.export(handBatch()), { code: 'success' });
  const text = out.text();
  const lines = text.trimEnd().split('\n');
  t.equal(lines[0], '== window 2024-01-02T03:04:10.000Z (10s): 3 series, 1 distributions, 2 events, 2 service checks ==');
  t.match(lines[1], /^METRIC\s+TYPE\s+VALUE\s+TAGS\s+HOST$/);
  const typeCol = lines[1]!.indexOf('TYPE');
  const valueCol = lines[1]!.indexOf('VALUE');
  const rows = lines.slice(2, 6);
  t.same(
    rows.map((r) => r.split(/\s{2,}/)),
    [
      ['req.count', 'count', '12', 'env:prod,svc:api', 'web-1'],
      ['req.rate', 'rate', '1.2', 'web-1'],
      ['mem.used', 'gauge', '512.5', 'env:prod'],
      ['lat', 'distribution', 'count=3 p50=5 p95=5 p99=5', 'svc:api', 'web-1'],
    ],
  );
  for (const r of rows) {
    t.match(r.slice(typeCol), /^(count|rate|gauge|distribution)\s/, 'TYPE column aligned');
    t.notOk(/\s/.test(r[valueCol]!), 'VALUE column aligned');
  }
  t.match(text, /EVENTS\n\[success\/low\]\s+Deploy\s+"v1\.2\\nrolled out"\s+env:prod\s+web-1\n/);
  t.match(text, /\[info\/normal\]\s+Bare\s+"x"\n/);
  t.match(text, /SERVICE CHECKS\nCRITICAL\s+db\.up\s+"connection refused"\s+env:prod\s+db-1\nOK\s+cache\.up\n/);
});

t.test('table mode prints a header even for an empty window', async (t) => {
  const out = collector();
  const sink = new ConsoleSink({ format: 'table', stream: out.stream });
  await sink.export({ windowStartMs: WINDOW_MS, intervalMs: 10_000, series: [], sketches: [], events: [], serviceChecks: [] });
  t.equal(out.text(), '== window 2024-01-02T03:04:10.000Z (10s): 0 series, 0 distributions, 0 events, 0 service checks ==\n');
});

t.test('auto format: table on a TTY, JSON otherwise; default stream is stdout', async (t) => {
  t.equal(new ConsoleSink({ stream: collector({ isTTY: true }).stream }).format, 'table');
  t.equal(new ConsoleSink({ stream: collector({ isTTY: false }).stream }).format, 'json');
  t.equal(new ConsoleSink({ format: 'auto', stream: collector().stream }).format, 'json');
  t.equal(new ConsoleSink({ format: 'json', stream: collector({ isTTY: true }).stream }).format, 'json');
  t.equal(new ConsoleSink().format, process.stdout.isTTY === true ? 'table' : 'json');
});

function numberedBatch(i: number): MetricBatch {
  return {
    windowStartMs: WINDOW_MS + i * 10_000,
    intervalMs: 10_000,
    series: Array.from({ length: 5 }, (_, j) => ({ metric: `m.${i}.${j}`, type: 'gauge' as const, timestamp: TS + i * 10, value: j, interval: 10, tags: [], host: 'h' })),
    sketches: [],
    events: [],
    serviceChecks: [],
  };
}

t.test('backpressure: a slow stream with a tiny buffer gets every line, in order, and export waits for it', async (t) => {
  const out = collector({ highWaterMark: 16, delayMs: 2 });
  const sink = new ConsoleSink({ format: 'json', stream: out.stream });
  let drains = 0;
  out.stream.on('drain', () => drains++);
  for (let i = 0; i < 10; i++) {
    const result = await sink.export(numberedBatch(i));
    t.same(result, { code: 'success' });
    // Resolved only once this window reached the reader and the stream's buffer emptied.
    t.equal(out.stream.writableLength, 0, `batch ${i}: nothing left buffered`);
    t.ok(out.text().includes(`"m.${i}.4"`), `batch ${i}: delivered before export resolved`);
  }
  t.equal(drains, 10, 'every write overflowed the 16-byte buffer and was drained');
  const metrics = out.text().trimEnd().split('\n').map((l) => (JSON.parse(l) as { metric: string }).metric);
  t.same(
    metrics,
    Array.from({ length: 50 }, (_, k) => `m.${Math.floor(k / 5)}.${k % 5}`),
  );
});

t.test('export waits for both the write callback and, when write() returned false, drain', async (t) => {
  // A minimal stream that lets the test decide when the callback runs and when 'drain' fires.
  const fake = Object.assign(new EventEmitter(), {
    full: false,
    cb: undefined as ((err?: Error | null) => void) | undefined,
    write(_chunk: string, cb: (err?: Error | null) => void): boolean {
      this.cb = cb;
      return !this.full;
    },
  });
  const sink = new ConsoleSink({ format: 'json', stream: fake as unknown as NodeJS.WritableStream });
  const tick = () => new Promise((r) => setImmediate(r));

  let done = false;
  fake.full = true;
  const first = sink.export(numberedBatch(0)).then((r) => ((done = true), r));
  await tick();
  fake.cb!();
  await tick();
  t.notOk(done, 'not resolved after the callback while the stream still wants a drain');
  fake.emit('drain');
  t.same(await first, { code: 'success' });

  done = false;
  fake.full = false;
  const second = sink.export(numberedBatch(1)).then((r) => ((done = true), r));
  await tick();
  t.notOk(done, 'not resolved before the callback even when write() returned true');
  fake.cb!();
  t.same(await second, { code: 'success' });
  t.equal(fake.listenerCount('drain'), 0, 'no listener left behind');
  t.equal(fake.listenerCount('close'), 0, 'no listener left behind');
});

t.test('concurrent exports keep window order; shutdown waits for them', async (t) => {
  const out = collector({ highWaterMark: 16, delayMs: 3 });
  const sink = new ConsoleSink({ format: 'json', stream: out.stream });
  const results = Array.from({ length: 5 }, (_, i) => sink.export(numberedBatch(i)));
  await sink.shutdown(Date.now() + 10_000);
  t.equal(out.text().trimEnd().split('\n').length, 25, 'everything flushed when shutdown resolved');
  t.same(await Promise.all(results), Array.from({ length: 5 }, () => ({ code: 'success' })));
  const metrics = out.text().trimEnd().split('\n').map((l) => (JSON.parse(l) as { metric: string }).metric);
  t.same(metrics, Array.from({ length: 25 }, (_, k) => `m.${Math.floor(k / 5)}.${k % 5}`));

  const late = await sink.export(numberedBatch(9));
  t.equal(late.code, 'failure', 'no export after shutdown');
  await sink.shutdown(Date.now());
});

t.test('shutdown gives up at the deadline when the stream never drains', async (t) => {
  const stuck = new Writable({ highWaterMark: 1, write: () => undefined });
  const sink = new ConsoleSink({ format: 'json', stream: stuck });
  const pending = sink.export(numberedBatch(0));
  const started = Date.now();
  await sink.shutdown(Date.now() + 50);
  t.ok(Date.now() - started < 2000, 'shutdown returned at the deadline');
  stuck.destroy();
  const result = await pending;
  t.equal(result.code, 'failure', 'the stuck write fails once the stream is destroyed');
});

t.test('a write error is returned as failure with MD_ERR_SINK_EXPORT, never thrown, never crashes', async (t) => {
  const cause = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
  const out = collector({ fail: cause });
  const sink = new ConsoleSink({ format: 'json', stream: out.stream });
  const result = await sink.export(handBatch());
  t.equal(result.code, 'failure');
  if (result.code !== 'failure') return;
  t.ok(result.error instanceof MdError);
  t.equal(result.error.code, 'MD_ERR_SINK_EXPORT');
  t.equal(result.error.cause, cause);
  // Let the stream's deferred 'error' event fire: without the sink's listener it would crash the test.
  await new Promise((r) => setImmediate(r));
  t.ok(out.stream.destroyed);
  const again = await sink.export(handBatch());
  t.equal(again.code, 'failure', 'a destroyed stream fails at once instead of waiting for drain');
});

t.test('a batch that cannot be formatted is a failure, not an exception', async (t) => {
  const out = collector();
  const sink = new ConsoleSink({ format: 'json', stream: out.stream });
  const bad: MetricBatch = {
    ...handBatch(),
    sketches: [{ metric: 'x', timestamp: TS, interval: 10, tags: [], host: 'h', sketch: { count: 1, min: 1, max: 1, sum: 1, avg: 1, keys: [1, 2], counts: [1] } }],
  };
  const result = await sink.export(bad);
  t.equal(result.code, 'failure');
  t.equal(out.chunks.length, 0, 'nothing half-written');
});
