import t from 'tap';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { Aggregator } from '../../src/aggregator.js';
import { silentLogger } from '../../src/logger.js';
import { StatsdParser } from '../../src/parser/statsd.js';
import type { SampleView, StatsdHandler } from '../../src/parser/types.js';

/** Counts what the parser reports; the view must only be read during the call. */
class Counter implements StatsdHandler {
  samples = 0;
  events = 0;
  checks = 0;
  badLines = 0;
  sample(v: SampleView): void {
    this.samples++;
    // Offsets must always be inside the buffer.
    if (v.nameStart < 0 || v.nameEnd > v.buf.length || v.nameStart >= v.nameEnd) throw new Error('bad name offsets');
  }
  event(): void {
    this.events++;
  }
  serviceCheck(): void {
    this.checks++;
  }
  bad(): void {
    this.badLines++;
  }
}

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 300);
const goodLine = fc
  .tuple(
    fc.stringMatching(/^[a-z][a-z0-9_.]{0,30}$/),
    fc.oneof(fc.integer({ min: -1e6, max: 1e6 }).map(String), fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((d) => String(d))),
    fc.constantFrom('c', 'g', 'ms', 'h', 'd'),
    fc.option(fc.constantFrom('0.5', '0.1', '1'), { nil: undefined }),
    fc.array(fc.stringMatching(/^[a-z]{1,8}:[a-z0-9]{1,8}$/), { maxLength: 4 }),
  )
  .map(([name, value, type, rate, tags]) => `${name}:${value}|${type}${rate !== undefined ? `|@${rate}` : ''}${tags.length > 0 ? `|#${tags.join(',')}` : ''}`);

t.test('random bytes never throw, and every non-empty line is either a sample, an event, a check or bad', async (t) => {
  const parser = new StatsdParser();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
      const h = new Counter();
      const lines = parser.parse(Buffer.from(bytes), h);
      return lines === h.samples + h.events + h.checks + h.badLines;
    }),
    { numRuns: RUNS * 5 },
  );
  t.pass('no exception escaped');
});

t.test('good lines around a mutated line are still parsed', async (t) => {
  const parser = new StatsdParser();
  fc.assert(
    fc.property(fc.array(goodLine, { minLength: 2, maxLength: 10 }), goodLine, fc.nat(), fc.integer({ min: 0, max: 255 }), (lines, victim, pos, byte) => {
      const mutated = Buffer.from(victim);
      const at = pos % mutated.length;
      // A newline would split the victim into two lines and change the count on purpose; keep it one line.
      mutated[at] = byte === 10 ? 0 : byte;
      const half = Math.floor(lines.length / 2);
      const packet = Buffer.concat([Buffer.from(lines.slice(0, half).join('\n') + '\n'), mutated, Buffer.from('\n' + lines.slice(half).join('\n'))]);
      const h = new Counter();
      parser.parse(packet, h);
      // Each good line yields one sample; the mutated one yields a sample or a bad line, never more.
      return h.samples + h.badLines === lines.length + 1 && h.samples >= lines.length;
    }),
    { numRuns: RUNS },
  );
  t.pass();
});

t.test('huge names and 1 MB tag lists are handled and bounded by the context limit', async (t) => {
  const agg = new Aggregator({ hostname: 'h', selfMetrics: false, maxContexts: 1000 });
  const hugeName = 'n'.repeat(200_000);
  const tags = Array.from({ length: 120_000 }, (_, i) => `t${i}:v`).join(',');
  t.ok(tags.length > 1_000_000);
  agg.ingestStatsd(Buffer.from(`${hugeName}:1|c\nok:1|c|#${tags}\nplain:1|c`));
  const b = agg.closeWindow();
  t.equal(b.series.find((s) => s.metric === 'plain')?.value, 0.1);
  t.equal(b.series.find((s) => s.metric === hugeName)?.value, 0.1);
  t.equal(b.series.find((s) => s.metric === 'ok')?.tags.length, 120_000);
});

t.test('the aggregator survives arbitrary bytes and keeps counting good traffic', async (t) => {
  const agg = new Aggregator({ hostname: 'h', selfMetrics: false, maxContexts: 5000 });
  const rx = agg.target({ stats: agg.stats.component('fuzz'), logger: silentLogger() });
  let good = 0;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      rx.statsd(Buffer.from(bytes));
      rx.statsd(Buffer.from('fuzz.good:1|c'));
      good++;
      return true;
    }),
    { numRuns: RUNS * 3 },
  );
  const s = agg.closeWindow().series.find((x) => x.metric === 'fuzz.good' && x.tags.length === 0);
  t.equal(Math.round(s!.value * 10), good);
  t.ok(agg.contextCount <= 5000, 'contexts bounded');
});

/** Records every callback with what it saw, so two ways of parsing can be compared exactly. */
class Recorder implements StatsdHandler {
  readonly out: unknown[] = [];
  sample(v: SampleView): void {
    const { buf, values, ...rest } = v;
    this.out.push(['sample', buf.toString('latin1', v.nameStart, v.nameEnd), [...values.subarray(0, v.valueCount)], rest]);
  }
  event(e: unknown): void {
    this.out.push(['event', e]);
  }
  serviceCheck(c: unknown): void {
    this.out.push(['check', c]);
  }
  bad(code: string, buf: Buffer, s: number, e: number): void {
    this.out.push(['bad', code, s, e]);
  }
}

t.test('a packet parses exactly as its lines parsed one by one (the fast path agrees with the general one)', async (t) => {
  // Bytes that matter to the grammar, so the generated lines hit every branch, good lines among them.
  const piece = fc.oneof(
    goodLine,
    fc.constantFrom(':', '|', '\n', '\r', '\r\n', '_e{', '_sc|', '#', '@', 'c', 'ms', 'a:1|c', ':|c', 'a:|c', 'a|c:1', 'a:1', 'x:1:2|h', '|#t', '|T1', ''),
    fc.stringMatching(/^[a-z0-9:|#@.,]{0,12}$/),
  );
  const packet = fc.array(piece, { maxLength: 30 }).map((p) => Buffer.from(p.join(''), 'latin1'));
  const whole = new StatsdParser({ gaugeDeltas: true });
  const single = new StatsdParser({ gaugeDeltas: true });
  fc.assert(
    fc.property(packet, fc.nat(), (buf, cut) => {
      // Also a start offset and an end short of the buffer, as the UDP front-end passes when it truncates.
      const start = buf.length === 0 ? 0 : cut % (buf.length + 1);
      const a = new Recorder();
      const n = whole.parse(buf, a, start, buf.length);
      const b = new Recorder();
      let lines = 0;
      let pos = start;
      while (pos <= buf.length) {
        let nl = buf.indexOf(10, pos);
        if (nl < 0) nl = buf.length;
        if (single.parseLine(buf, b, pos, nl)) lines++;
        pos = nl + 1;
      }
      return n === lines && isDeepStrictEqual(a.out, b.out);
    }),
    { numRuns: RUNS * 5 },
  );
  t.pass('identical callbacks and line counts');
});
