/**
 * Memory stays bounded under bad input: repeated large bad bodies leave the heap where it was after a
 * GC, and every structure that grows with input (the frame-id memory, the aggregator's contexts) stops
 * at its limit.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
import { Aggregator, createRootLogger } from '@metrics-distributor/core';
import { CredentialStore } from '../../src/auth.js';
import { RecentIds } from '../../src/dedupe.js';
import { LogIngest } from '../../src/ingest.js';
import { buildApp } from '../../src/routes.js';
import { frame, SENTINEL, SENTINEL_LINE } from './arbitraries.js';
import { httpDeps, setup } from '../helpers.js';

// tap starts the file without --expose-gc; this turns it on for a fresh context's `gc` only.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function settledMemory(): number {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const MAX_BODY = 1024 * 1024;
const MiB = 1024 * 1024;

/** Half of a gzip stream that would inflate to 512 KiB: it ends early, and under the limit. */
function truncatedGzip(): Buffer {
  const z = gzipSync(randomBytes(MAX_BODY / 4).toString('hex'));
  return z.subarray(0, z.length >> 1);
}

/** Large bad bodies of every kind, each just under the limit as sent. */
const BAD: { name: string; type: string; encoding?: string; body: Buffer; status: number }[] = [
  { name: 'random bytes labelled gzip', type: 'application/logplex-1', encoding: 'gzip', body: Buffer.alloc(MAX_BODY - 1, 0x5a), status: 400 },
  { name: 'gzip bomb (64 MiB of zeros)', type: 'application/logplex-1', encoding: 'gzip', body: gzipSync(Buffer.alloc(64 * MiB)), status: 413 },
  { name: 'truncated gzip', type: 'text/plain', encoding: 'gzip', body: truncatedGzip(), status: 400 },
  { name: 'one line over maxFrameBytes', type: 'text/plain', body: Buffer.alloc(MAX_BODY - 1, 0x61), status: 200 },
  { name: 'logplex frame with a huge count', type: 'application/logplex-1', body: Buffer.from(`9999999 <190>1 - h app web.1 - ${'x'.repeat(MAX_BODY - 100)}`), status: 200 },
  { name: 'broken NDJSON', type: 'application/x-ndjson', body: Buffer.from('{"message":'.repeat(Math.floor((MAX_BODY - 1) / 11))), status: 200 },
  { name: 'deeply nested JSON', type: 'application/json', body: Buffer.from('['.repeat(MAX_BODY / 2 - 1) + ']'.repeat(MAX_BODY / 2 - 1)), status: 200 },
  { name: 'many unique bad l2met values', type: 'text/plain', body: Buffer.from(Array.from({ length: 20_000 }, (_, i) => `count#m${i}=x${i}`).join('\n')), status: 200 },
];

t.test('repeated large bad bodies do not grow the heap (after GC) and never get a 5xx', async (t) => {
  const { agg, fe, stats } = setup(t, { maxBodyBytes: MAX_BODY }, 'warn');
  const round = async () => {
    for (const b of BAD) {
      const headers: Record<string, string> = { 'content-type': b.type };
      if (b.encoding !== undefined) headers['content-encoding'] = b.encoding;
      const res = await fe.server.inject({ method: 'POST', url: '/logs', headers, payload: b.body });
      if (res.statusCode !== b.status) t.fail(`${b.name}: ${res.statusCode} ${res.body}`);
    }
    const ok = await fe.server.inject({ method: 'POST', url: '/logs', headers: { 'content-type': 'application/logplex-1' }, payload: frame(SENTINEL_LINE) });
    if (ok.statusCode !== 200) t.fail(`sentinel: ${ok.statusCode}`);
    return agg.closeWindow().series.find((s) => s.metric === SENTINEL)?.value;
  };
  for (let i = 0; i < 3; i++) await round();
  const before = settledMemory();
  const rounds = 15;
  let sentinels = 0;
  for (let i = 0; i < rounds; i++) sentinels += (await round()) ?? 0;
  const after = settledMemory();
  t.equal(sentinels, rounds, 'the good body after the bad ones is counted every round');
  t.equal(stats.dropped('internal_error'), 0);
  const growth = after - before;
  t.comment(`heap+arrayBuffers before ${(before / MiB).toFixed(1)} MiB, after ${rounds} rounds of ${BAD.length} bad bodies ${(after / MiB).toFixed(1)} MiB`);
  // 15 rounds push ~100 MiB of bodies (and inflate a 64 MiB bomb 15 times); retaining even one body per round would be 15 MiB.
  t.ok(growth < 8 * MiB, `memory grew ${(growth / MiB).toFixed(1)} MiB (bound 8 MiB)`);
});

t.test('the frame-id memory stops at dedupeMaxIds, whatever the number of distinct ids', async (t) => {
  const logger = createRootLogger({ level: 'warn' });
  const agg = new Aggregator({ selfMetrics: false, hostname: 'h', countersAs: 'count', logger });
  const stats = agg.stats.component('http');
  const recent = new RecentIds(300_000, 100);
  const deps = httpDeps(agg, logger);
  const app = buildApp({
    options: { maxBodyBytes: MAX_BODY, maxInflightRequests: 64, vercelSecret: undefined },
    credentials: new CredentialStore([]),
    recent,
    ingest: new LogIngest(deps.target, deps.context, 10 * 1024),
    statsd: deps.statsdTarget,
    context: deps.context,
    runtime: { closing: false, inflight: 0, onIdle: undefined },
  });
  t.teardown(() => app.close());
  let maxSize = 0;
  for (let i = 0; i < 1000; i++) {
    const headers = { 'content-type': 'application/logplex-1', 'logplex-frame-id': `id-${i}-${'f'.repeat(100)}`, 'logplex-drain-token': `d.${i}` };
    await app.inject({ method: 'POST', url: '/logs', headers, payload: frame(SENTINEL_LINE) });
    maxSize = Math.max(maxSize, recent.size);
  }
  t.equal(maxSize, 100, 'never more than dedupeMaxIds ids');
  // Ids over 128 characters are not remembered at all (and not deduplicated).
  for (let i = 0; i < 50; i++) {
    await app.inject({ method: 'POST', url: '/logs', headers: { 'content-type': 'application/logplex-1', 'logplex-frame-id': 'x'.repeat(129 + i) }, payload: frame(SENTINEL_LINE) });
  }
  t.equal(recent.size, 100);
  // The oldest id was evicted: its retry counts again (bounded memory costs at most a double count, never a loss).
  await app.inject({ method: 'POST', url: '/logs', headers: { 'content-type': 'application/logplex-1', 'logplex-frame-id': `id-0-${'f'.repeat(100)}`, 'logplex-drain-token': 'd.0' }, payload: frame(SENTINEL_LINE) });
  t.equal(agg.closeWindow().series.find((s) => s.metric === SENTINEL)?.value, 1051);
  t.equal(stats.dropped('duplicate'), 0);
});

t.test('unique l2met names stop at maxContexts; the rest are dropped and counted, good names keep counting', async (t) => {
  const logger = createRootLogger({ level: 'error' });
  const agg = new Aggregator({ selfMetrics: false, hostname: 'h', countersAs: 'count', maxContexts: 500, logger });
  const { HttpFrontend } = await import('../../src/index.js');
  const fe = new HttpFrontend({ port: 0 }, httpDeps(agg, logger));
  t.teardown(() => fe.close());
  // The sentinel's context exists before the flood.
  await fe.server.inject({ method: 'POST', url: '/logs', headers: { 'content-type': 'text/plain' }, payload: `count#${SENTINEL}=1` });
  for (let r = 0; r < 10; r++) {
    const body = Array.from({ length: 1000 }, (_, i) => `count#flood.${r}.${i}=1`).join('\n') + `\ncount#${SENTINEL}=1`;
    await fe.server.inject({ method: 'POST', url: '/logs', headers: { 'content-type': 'text/plain' }, payload: body });
    t.ok(agg.contextCount <= 500, `round ${r}: ${agg.contextCount} contexts`);
  }
  t.equal(agg.stats.component('aggregator').dropped('max_contexts'), 10_000 - 499);
  t.equal(agg.closeWindow().series.find((s) => s.metric === SENTINEL)?.value, 11);
});
