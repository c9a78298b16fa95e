import { Writable } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { Aggregator } from '../src/aggregator.js';
import type { MetricBatch } from '../src/model.js';
import { SinkFanout } from '../src/sink-fanout.js';
import { StatsRegistry } from '../src/stats.js';
import { InMemorySink } from '../src/testing.js';

t.test('the aggregator emits each closed window to its listeners; a SinkFanout feeds every sink from it', async (t) => {
  const stats = new StatsRegistry();
  const a = new Aggregator({ hostname: 'h', selfMetrics: false, stats });
  const seen: MetricBatch[] = [];
  a.onWindow((b) => seen.push(b));
  const fanout = new SinkFanout({ logger: pino({ level: 'silent' }), stats });
  a.onWindow((b) => void fanout.push(b));
  const one = new InMemorySink('one');
  const two = new InMemorySink('two');
  fanout.add(one);
  fanout.add(two, { maxBatches: 1 });
  t.equal(stats.component('sink-one').gaugeValues().get('queue_depth'), 0, 'an attached sink reports an empty queue from the start');
  a.increment('x');
  const batch = a.closeWindow();
  t.same(seen, [batch], 'the listener gets the very batch closeWindow returns');
  await a.close();
  await fanout.shutdown(Date.now() + 1000);
  t.same(one.batches.length, 2, 'the closed window and the partial one at close()');
  t.equal(two.batches[0], batch, 'every sink gets the same batch object');
  t.equal(stats.component('sink-two').received, 2, 'counted on the sink-<name> component');
});

t.test("addSink is a fan-out of the aggregator's own: close() waits for its sinks", async (t) => {
  const a = new Aggregator({ hostname: 'h', selfMetrics: false });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const got: MetricBatch[] = [];
  a.addSink({
    name: 'slow',
    async export(b) {
      await gate;
      got.push(b);
      return { code: 'success' };
    },
    async shutdown() {},
  });
  a.increment('y');
  const closing = a.close(Date.now() + 5000);
  setTimeout(release, 20);
  await closing;
  t.equal(got.length, 1, 'close() resolved only once the sink had the last window');
});

t.test("the aggregator's drops go through its component: counted per reason, one log line a minute per reason", async (t) => {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const stats = new StatsRegistry();
  const a = new Aggregator({ hostname: 'h', selfMetrics: false, stats, maxContexts: 1, maxEventsPerWindow: 0, logger: pino({ level: 'info' }, stream) });
  a.ingestStatsd(Buffer.from('a:NaN|c\nb:NaN|c\nok:1|c\nnew:1|c\ns:x|s|T1700000000\n_e{1,1}:t|x'));
  a.addSample({ name: 'late', type: 'h', value: 1, timestampS: 1_700_000_000 }, 3);
  const agg = stats.component('aggregator');
  t.equal(agg.dropped('non_finite'), 2);
  t.equal(agg.dropped('max_contexts'), 1);
  t.equal(agg.dropped('timestamped_type'), 4, 'a weighted sample counts as its weight');
  t.equal(agg.dropped('max_events'), 1);
  t.same(
    lines.map((l) => [l.component, l.reason, (l.err as { code: string }).code]),
    [
      ['aggregator', 'non_finite', 'MD_ERR_AGG_NON_FINITE'],
      ['aggregator', 'max_contexts', 'MD_ERR_AGG_MAX_CONTEXTS'],
      ['aggregator', 'timestamped_type', 'MD_ERR_AGG_TIMESTAMPED_TYPE'],
      ['aggregator', 'max_events', 'MD_ERR_AGG_MAX_EVENTS'],
    ],
    'one line per reason, with its error code',
  );
  t.equal(lines[1]!.metric, 'new', 'the line names a dropped metric');
});
