/**
 * Shared generators and checks for the fuzz tests: well-formed logplex frames and l2met lines to wrap
 * bad input in, a sentinel metric whose exact total proves that good lines around a bad one survive,
 * and the record/line bookkeeping every body must satisfy.
 */
import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import type { BodyFormat } from '../../src/body.js';
import { FIXTURES, captureLogger, fixture, ingestInto, newAggregator } from '../helpers.js';

/** Runs per property; `FUZZ_RUNS` raises it (the package tests must stay well under a minute by default). */
export const RUNS = Number(process.env['FUZZ_RUNS'] ?? 100);

/** A counter name no fixture and no mutation of one can produce by chance. */
export const SENTINEL = 'fuzz_sentinel_q7';

/** An app line carrying one sentinel increment, with the receive time (`-`) as timestamp. */
export const SENTINEL_LINE = `<190>1 - host app web.1 - count#${SENTINEL}=1`;

/** `len(msg + suffix) SP msg suffix` with the count off by `delta`: a logplex frame. */
export function frame(msg: string, suffix = '\n', delta = 0): string {
  return `${Buffer.byteLength(msg + suffix) + delta} ${msg}${suffix}`;
}

/** Every logplex fixture, by file name. */
export const LOGPLEX_FIXTURES: ReadonlyMap<string, Buffer> = new Map(
  readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.logplex'))
    .sort()
    .map((f) => [f, fixture(f)]),
);

/** Every fixture of any format, by file name. */
export const ALL_FIXTURES: ReadonlyMap<string, Buffer> = new Map(
  readdirSync(FIXTURES)
    .filter((f) => f !== 'MANIFEST.json')
    .sort()
    .map((f) => [f, fixture(f)]),
);

/**
 * A syslog message as logplex writes it, with a payload of letters, digits, spaces and l2met
 * punctuation but never `<`, CR or LF, so it can hold no frame header and no line break.
 */
export const syslogMessage: fc.Arbitrary<string> = fc
  .tuple(
    fc.integer({ min: 0, max: 191 }),
    fc.constantFrom('-', '2013-07-22T00:06:26+00:00', '2020-01-08T22:33:57.353034+00:00'),
    fc.constantFrom('app', 'heroku'),
    fc.constantFrom('web.1', 'router', 'worker.3', 'heroku-postgres', 'logplex'),
    fc.stringMatching(/^[a-z0-9 =#._é-]{0,120}$/),
  )
  .map(([pri, ts, app, proc, payload]) => `<${pri}>1 ${ts} host ${app} ${proc} - ${payload}`);

/** Random bytes with a bias towards the bytes framing cares about (digits, SP, `<`, `>`, LF, CR). */
export const framingBytes: fc.Arbitrary<Uint8Array> = fc
  .array(fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x30, 0x31, 0x39, 0x20, 0x3c, 0x3e, 0x0a, 0x0d)), { maxLength: 600 })
  .map((a) => Uint8Array.from(a));

/** Mutations of a buffer: overwrite, insert or delete a few bytes at random places. */
export const mutation = fc.array(
  fc.tuple(fc.constantFrom('set', 'insert', 'delete'), fc.nat(), fc.integer({ min: 0, max: 255 })),
  { minLength: 1, maxLength: 8 },
);

/** Applies a {@link mutation} to a copy of `buf`. */
export function mutate(buf: Buffer, ops: readonly (readonly [string, number, number])[]): Buffer {
  const bytes = [...buf];
  for (const [op, pos, byte] of ops) {
    const at = bytes.length === 0 ? 0 : pos % (bytes.length + (op === 'insert' ? 1 : 0));
    if (op === 'set' && bytes.length > 0) bytes[at] = byte;
    else if (op === 'insert') bytes.splice(at, 0, byte);
    else if (op === 'delete' && bytes.length > 0) bytes.splice(at, 1);
  }
  return Buffer.from(bytes);
}

/**
 * A real aggregator and log ingest (no HTTP), for properties that need exact totals: `ingest` runs a
 * body, `sentinel()` closes the window and returns the sentinel's count and the `http` bookkeeping.
 */
export function newIngest(maxFrameBytes = 10 * 1024) {
  const agg = newAggregator();
  const stats = agg.stats.component('http');
  const ingest = ingestInto(agg, captureLogger('warn').logger, maxFrameBytes);
  return {
    agg,
    stats,
    ingest: (body: Buffer, format: BodyFormat) => ingest.ingest(body, format),
    /** Closes the window: the sentinel total in it, and whether every record landed in exactly one bucket. */
    close(): { sentinel: number; balanced: boolean; received: number } {
      const batch = agg.closeWindow();
      const s = batch.series.filter((x) => x.metric === SENTINEL);
      const balanced = stats.received === stats.parsed + stats.bad + stats.dropped('frame_too_large');
      return { sentinel: s.reduce((n, x) => n + x.value, 0), balanced, received: stats.received };
    },
  };
}
