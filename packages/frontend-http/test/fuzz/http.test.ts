/**
 * Property-based fuzzing of whole HTTP requests through `fastify.inject()`: wrong content types, bad
 * gzip/deflate, unknown encodings and random bytes under every content type, on `/logs` and `/statsd`.
 * Properties: the answer is always one of the documented statuses (never 500), and good lines around a
 * bad one are counted exactly in the aggregator's output.
 */
import t from 'tap';
import assert from 'node:assert/strict';
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { ALL_FIXTURES, RUNS, SENTINEL, SENTINEL_LINE, frame, mutate, mutation } from './arbitraries.js';
import { setup } from '../helpers.js';

const MAX_BODY = 64 * 1024;
/** The error bodies the README lists; nothing else may come back (and never request data). */
const ERROR_BODIES = new Set(['bad_encoding', 'body_too_large', 'body too large', 'unsupported_encoding', 'incomplete body']);

const CONTENT_TYPES = fc.oneof(
  fc.constantFrom(
    undefined,
    'application/logplex-1',
    'text/plain',
    'text/plain; charset=utf-8',
    'application/json',
    'application/x-ndjson',
    'application/jsonl',
    'application/octet-stream',
    'multipart/form-data; boundary=x',
    'application/x-www-form-urlencoded',
    'APPLICATION/LOGPLEX-1',
    ';;;',
    '',
  ),
  fc.stringMatching(/^[\x21-\x7e][\x20-\x7e]{0,60}$/),
);

/** A body and the Content-Encoding it is sent with; `expect` is the one status the README promises, when it promises one. */
interface Encoded {
  body: Buffer;
  encoding: string | undefined;
  expect: number | undefined;
}

const payload = fc.oneof(
  fc.uint8Array({ maxLength: 4096 }).map((b) => Buffer.from(b)),
  fc.constantFrom(...ALL_FIXTURES.values()),
  fc.tuple(fc.constantFrom(...ALL_FIXTURES.values()), mutation).map(([b, ops]) => mutate(b, ops)),
);

const encoded: fc.Arbitrary<Encoded> = fc.oneof(
  payload.map((body) => ({ body, encoding: undefined, expect: 200 })),
  payload.map((body) => ({ body, encoding: 'identity', expect: 200 })),
  fc.tuple(payload, fc.constantFrom('gzip', 'x-gzip', 'GZIP', ' gzip ')).map(([b, encoding]) => ({ body: gzipSync(b), encoding, expect: 200 })),
  payload.map((b) => ({ body: deflateSync(b), encoding: 'deflate', expect: 200 })),
  payload.map((b) => ({ body: deflateRawSync(b), encoding: 'deflate', expect: 200 })),
  payload.map((b) => ({ body: gzipSync(deflateSync(b)), encoding: 'deflate, gzip', expect: 200 })),
  // Not gzip at all (no gzip magic first), labelled gzip.
  fc.uint8Array({ maxLength: 2048 }).map((b) => ({ body: Buffer.concat([Buffer.from([0x00]), b]), encoding: 'gzip', expect: 400 })),
  // Truncated: gzip's trailer (CRC, length) is missing.
  fc.tuple(payload, fc.nat()).map(([b, n]) => {
    const z = gzipSync(b);
    return { body: z.subarray(0, n % (z.length - 8)), encoding: 'gzip', expect: 400 };
  }),
  // A flipped byte somewhere: usually 400, sometimes still decodes (e.g. in the header's mtime).
  fc.tuple(payload, fc.nat(), fc.integer({ min: 1, max: 255 })).map(([b, at, x]) => {
    const z = Buffer.from(gzipSync(b));
    const i = at % z.length;
    z[i] = z[i]! ^ x;
    return { body: z, encoding: 'gzip', expect: undefined };
  }),
  fc.uint8Array({ maxLength: 1024 }).map((b) => ({ body: Buffer.from(b), encoding: 'deflate', expect: undefined })),
  // Bombs: far more than maxBodyBytes once inflated.
  fc.integer({ min: MAX_BODY + 1, max: 8 * MAX_BODY }).map((n) => ({ body: gzipSync(Buffer.alloc(n, 0x61)), encoding: 'gzip', expect: 413 })),
  fc.integer({ min: MAX_BODY + 1, max: 8 * MAX_BODY }).map((n) => ({ body: deflateSync(Buffer.alloc(n, 0x0a)), encoding: 'deflate', expect: 413 })),
  // As sent, over the limit.
  fc.integer({ min: MAX_BODY + 1, max: 2 * MAX_BODY }).map((n) => ({ body: Buffer.alloc(n, 0x31), encoding: undefined, expect: 413 })),
  fc.tuple(payload, fc.constantFrom('br', 'compress', 'zstd', 'gzip, br', 'x-unknown')).map(([body, encoding]) => ({ body, encoding, expect: 415 })),
  fc.tuple(payload, fc.stringMatching(/^[\x21-\x7e][\x20-\x7e]{0,30}$/)).map(([body, encoding]) => ({ body, encoding, expect: undefined })),
);

t.test('any content type, any encoding, any bytes: a documented status, never 500, nothing echoed', async (t) => {
  const { fe, stats } = setup(t, { maxBodyBytes: MAX_BODY }, 'warn');
  await fc.assert(
    fc.asyncProperty(fc.constantFrom('/logs', '/statsd', '/logs?app=shop'), CONTENT_TYPES, encoded, async (url, type, enc) => {
      const headers: Record<string, string> = {};
      if (type !== undefined) headers['content-type'] = type;
      if (enc.encoding !== undefined) headers['content-encoding'] = enc.encoding;
      const res = await fe.server.inject({ method: 'POST', url, headers, payload: enc.body });
      const why = `${url} ${String(type)} ${String(enc.encoding)} → ${res.statusCode} ${res.body}`;
      assert.ok([200, 400, 413, 415].includes(res.statusCode), why);
      if (enc.expect !== undefined) assert.equal(res.statusCode, enc.expect, why);
      if (res.statusCode === 200) assert.equal(res.body, '', why);
      else assert.ok(ERROR_BODIES.has((JSON.parse(res.body) as { error: string }).error), why);
    }),
    { numRuns: RUNS * 3 },
  );
  t.equal(stats.dropped('internal_error'), 0, 'no internal errors');
  t.equal(fe.inflight, 0, 'every slot released');
});

/** One body per format with a bad piece between two sentinel lines; `bad` is inserted raw. */
const FORMATS = {
  logplex: {
    type: 'application/logplex-1',
    wrap: (bad: Buffer) => Buffer.concat([Buffer.from(frame(SENTINEL_LINE)), bad, Buffer.from('\n' + frame(SENTINEL_LINE))]),
  },
  text: {
    type: 'text/plain',
    wrap: (bad: Buffer) => Buffer.concat([Buffer.from(`count#${SENTINEL}=1\n`), bad, Buffer.from(`\ncount#${SENTINEL}=1\n`)]),
  },
  ndjson: {
    type: 'application/x-ndjson',
    wrap: (bad: Buffer) => Buffer.concat([Buffer.from(`{"message":"count#${SENTINEL}=1"}\n`), bad, Buffer.from(`\n{"message":"count#${SENTINEL}=1"}`)]),
  },
  json: {
    type: 'application/json',
    wrap: (bad: Buffer) => Buffer.concat([Buffer.from(`[{"message":"count#${SENTINEL}=1"},`), bad, Buffer.from(`,{"msg":"count#${SENTINEL}=1","timestamp":1}]`)]),
  },
  statsd: {
    type: 'text/plain',
    wrap: (bad: Buffer) => Buffer.concat([Buffer.from(`${SENTINEL}:1|c\n`), bad, Buffer.from(`\n${SENTINEL}:1|c`)]),
  },
} as const;
type FormatName = keyof typeof FORMATS;

/** A bad piece for a format: line formats get bytes without LF; JSON gets any JSON value (one array element). */
function badPiece(format: FormatName): fc.Arbitrary<Buffer> {
  if (format === 'json') {
    return fc.oneof(
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v))),
      // Deep nesting, which JSON.parse accepts but recursive code would not (found by this test: 500).
      fc.integer({ min: 1, max: 30_000 }).map((d) => Buffer.from('['.repeat(d) + ']'.repeat(d))),
      fc.integer({ min: 1, max: 9_000 }).map((d) => Buffer.from('{"a":'.repeat(d) + 'null' + '}'.repeat(d))),
    );
  }
  const noLf = (b: Uint8Array) => Buffer.from(b.map((x) => (x === 0x0a ? 0x20 : x)));
  const bytes = fc.uint8Array({ maxLength: 2000 }).map(noLf);
  if (format === 'logplex') {
    return fc.oneof(
      bytes,
      fc.tuple(fc.constantFrom(...[...ALL_FIXTURES.entries()].filter(([f]) => f.endsWith('.logplex')).map(([, b]) => b)), mutation).map(([b, ops]) => mutate(b, ops)),
    );
  }
  return fc.oneof(bytes, fc.tuple(fc.constantFrom(...ALL_FIXTURES.values()), mutation).map(([b, ops]) => noLf(mutate(b, ops))));
}

for (const format of Object.keys(FORMATS) as FormatName[]) {
  t.test(`${format}: a bad piece between two good lines costs neither of them (plain and gzipped)`, async (t) => {
    const { agg, fe, stats } = setup(t, { maxBodyBytes: MAX_BODY }, 'warn');
    const { type, wrap } = FORMATS[format];
    const url = format === 'statsd' ? '/statsd' : '/logs';
    await fc.assert(
      fc.asyncProperty(badPiece(format), fc.boolean(), async (bad, gzip) => {
        const body = wrap(bad);
        const headers: Record<string, string> = { 'content-type': type };
        if (gzip) headers['content-encoding'] = 'gzip';
        const res = await fe.server.inject({ method: 'POST', url, headers, payload: gzip ? gzipSync(body) : body });
        assert.equal(res.statusCode, 200, res.body);
        const series = agg.closeWindow().series.filter((s) => s.metric === SENTINEL);
        assert.equal(
          series.reduce((n, s) => n + s.value, 0),
          2,
          `${format} ${JSON.stringify(body.toString('latin1').slice(0, 300))}`,
        );
      }),
      { numRuns: RUNS },
    );
    t.equal(stats.dropped('internal_error'), 0);
    if (format !== 'statsd') t.equal(stats.received, stats.parsed + stats.bad + stats.dropped('frame_too_large'), 'every piece in one bucket');
  });
}

t.test('bad requests between good ones: every good request is counted exactly once', async (t) => {
  const { agg, fe, stats } = setup(t, { maxBodyBytes: MAX_BODY }, 'warn');
  let good = 0;
  await fc.assert(
    fc.asyncProperty(CONTENT_TYPES, encoded, async (type, enc) => {
      const headers: Record<string, string> = {};
      if (type !== undefined) headers['content-type'] = type;
      if (enc.encoding !== undefined) headers['content-encoding'] = enc.encoding;
      await fe.server.inject({ method: 'POST', url: '/logs', headers, payload: enc.body });
      const res = await fe.server.inject({ method: 'POST', url: '/logs', headers: { 'content-type': 'application/logplex-1' }, payload: frame(SENTINEL_LINE) });
      assert.equal(res.statusCode, 200);
      good++;
    }),
    { numRuns: RUNS * 2 },
  );
  const total = agg
    .closeWindow()
    .series.filter((s) => s.metric === SENTINEL)
    .reduce((n, s) => n + s.value, 0);
  t.equal(total, good, `${good} sentinel bodies, each counted once`);
  t.equal(stats.dropped('internal_error'), 0);
});
