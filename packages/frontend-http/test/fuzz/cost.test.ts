/**
 * CPU stays bounded under bad input: bodies are parsed synchronously on the event loop, so a line that
 * costs quadratic time stalls every listener (UDP included). Found by this test: `Error L10` lines with
 * a long digit run cost ~40 ms each (a backtracking regex), so one 5 MiB body blocked the loop ~20 s.
 */
import t from 'tap';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RUNS, SENTINEL_LINE, frame, newIngest } from './arbitraries.js';

const LINE_BYTES = 10 * 1024 - 64;

/** Syslog headers that route a line to each extractor. */
const HEADERS = ['<172>1 - host heroku logplex - ', '<158>1 - host heroku router - ', '<45>1 - host heroku web.1 - ', '<134>1 - host app heroku-postgres - ', '<190>1 - host app web.1 - '];
/** Prefixes that reach the deeper branches of each extractor. */
const PREFIXES = ['', 'Error L10 (output buffer overflow): ', 'Error R14 (', 'at=info ', 'count#', 'sample#x=', 'measure#y="'];
/** Units repeated to fill a line: digit runs, separators, quotes, escapes, near-miss keywords. */
const UNITS = ['1', ' ', '=', '#', '"', '\\', '1 ', 'a=', 'count#', 'count#a=1 ', 'sample#', 'dropped 1', '1 messages dropped', ' messages dropped since', '\\"', '1e', '.', '-', 'é', '\t'];

/**
 * The fastest of `runs` timings of `fn`, in ms. Preemption on a loaded machine only adds time, so the
 * minimum is the cost of the work itself, while quadratic work stays slow in every run.
 */
function fastestOf(runs: number, fn: () => void): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    fn();
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

/** A logplex body of `n` lines, each a header + prefix + unit repeated to ~10 KiB, between two sentinels. */
function body(header: string, prefix: string, unit: string, n: number): Buffer {
  const fill = unit.repeat(Math.ceil((LINE_BYTES - header.length - prefix.length) / unit.length)).slice(0, LINE_BYTES - header.length - prefix.length);
  const line = frame(header + prefix + fill);
  return Buffer.from(frame(SENTINEL_LINE) + line.repeat(n) + frame(SENTINEL_LINE));
}

t.test('every adversarial ~10 KiB line pattern costs well under a millisecond per line', async (t) => {
  // 50 lines of each pattern (~0.5 MiB). Before the fix, the L10 digit run alone took ~2 s here.
  let worst = { ms: 0, what: '' };
  for (const header of HEADERS) {
    for (const prefix of PREFIXES) {
      for (const unit of UNITS) {
        const b = body(header, prefix, unit, 50);
        const ms = fastestOf(3, () => {
          const ing = newIngest();
          ing.ingest(b, 'logplex');
          assert.equal(ing.close().sentinel, 2);
        });
        if (ms > worst.ms) worst = { ms, what: JSON.stringify(header + prefix + unit) };
      }
    }
  }
  t.comment(`slowest pattern: ${worst.what}, ${worst.ms.toFixed(1)} ms for 50 lines`);
  // Generous for slow CI machines: linear parsing of 0.5 MiB takes a few ms.
  t.ok(worst.ms < 250, `slowest 50 lines took ${worst.ms.toFixed(1)} ms, fastest of 3 runs (bound 250 ms)`);
});

t.test('random short patterns repeated to a full line: bounded cost under every extractor', async (t) => {
  let worst = 0;
  fc.assert(
    fc.property(fc.constantFrom(...HEADERS), fc.constantFrom(...PREFIXES), fc.string({ minLength: 1, maxLength: 12, unit: fc.constantFrom('1', '9', ' ', '=', '#', '"', '\\', 'a', 'e', '.', '-', '+', ':', 'd', 'L', '(', '%', '\t') }), (header, prefix, unit) => {
      const b = body(header, prefix, unit, 20);
      const once = () => {
        const ing = newIngest();
        ing.ingest(b, 'logplex');
        assert.equal(ing.close().sentinel, 2);
      };
      let ms = fastestOf(1, once);
      // Retimed only when slow: a loaded machine preempts a run; quadratic work is slow every time.
      if (ms >= 250) ms = Math.min(ms, fastestOf(2, once));
      worst = Math.max(worst, ms);
    }),
    { numRuns: RUNS },
  );
  t.ok(worst < 250, `slowest 20 lines took ${worst.toFixed(1)} ms (bound 250 ms)`);
});
