// First sight of a context against second sight, in process: the CPU a line costs when its context is
// new (bench scenario 7's first window: every one of 200k mixed contexts is new) and when it exists.
// Run after a build: node bench/first-sight.mjs   (from packages/core)
//
// FS_CONTEXTS (default 200000, a multiple of 20): new contexts, one line each, fed as 20-line packets
// through an aggregator's front-end target as the UDP front-end does (`target.statsd(slab, start, end)`,
// each datagram copied into a reused slab first, as recvmmsg does), then the same contexts again with
// other values (second sight, FS_SECOND rounds, default 1), all in one open window.
// FS_CLOSE=1 closes the window between first and second sight, so second sight claims slots and
// aggregates again (the second window of scenario 7) without making contexts.
// FS_WARMUP (default 20000) contexts go through a throwaway aggregator first, so the JIT is warm.
//
// Per-function cost: `node --cpu-prof bench/first-sight.mjs`, or instructions by difference, which the
// machine's load does not move:
//   FS_SECOND=0 FS_CONTEXTS=20000 valgrind --tool=callgrind --callgrind-out-file=/tmp/a node bench/first-sight.mjs
//   FS_SECOND=0 FS_CONTEXTS=60000 valgrind --tool=callgrind --callgrind-out-file=/tmp/b node bench/first-sight.mjs
//   (FS_CACHE_DIR=/tmp/fs-cache on both, after one run without valgrind to make the files)
// (total instructions of b minus a, over 40000 lines, is first sight's instructions per line; with
// FS_SECOND=1 against 0 at one size, second sight's).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Aggregator, componentContext, silentLogger } from '@metrics-distributor/core';

const LPP = 20;
/** As bench/lib/payloads.mjs MIX: c×4, g×4, ms×3, h×3, s×3, d×3 per 20-line packet. */
const MIX = ['c', 'g', 'ms', 'h', 's', 'd', 'c', 'g', 'ms', 'h', 's', 'd', 'c', 'g', 'ms', 'h', 's', 'd', 'c', 'g'];

/** bench/lib/payloads.mjs mixedLines, cycle `r` only: context k has type MIX[k % 20] and 2 tags. */
function mixedCycle(prefix, contexts, r) {
  const w = String(contexts - 1).length;
  const out = [];
  for (let k = 0; k < contexts; k++) {
    const j = r * contexts + k;
    const t = MIX[k % LPP];
    const v3 = (m) => String(100 + ((j * m) % 900));
    let value;
    switch (t) {
      case 'c':
        value = '1|c';
        break;
      case 'g':
        value = `${v3(3)}|g`;
        break;
      case 'ms':
        value = `${v3(7)}|ms|@0.5`;
        break;
      case 'h':
        value = `${v3(13)}|h`;
        break;
      case 's':
        value = `m${String((k * 31 + r) % 1000).padStart(3, '0')}|s`;
        break;
      default:
        value = `${v3(17)}|d`;
    }
    out.push(`${prefix}.${t}.${String(k).padStart(w, '0')}:${value}|#env:bench,shard:${k % 8}`);
  }
  return out;
}

/**
 * Cycle `r` of `contexts` mixed contexts as 20-line packets. With FS_CACHE_DIR the packets are kept in a
 * file there and read back on later runs, so instruction counts of runs of two sizes differ by the
 * feeding alone, not by making the lines.
 */
function packets(prefix, contexts, r) {
  const dir = process.env.FS_CACHE_DIR;
  const file = dir === undefined ? undefined : join(dir, `first-sight-${prefix}-${contexts}-${r}.bin`);
  let all;
  if (file !== undefined && existsSync(file)) all = readFileSync(file);
  else {
    const lines = mixedCycle(prefix, contexts, r);
    const parts = [];
    for (let i = 0; i < lines.length; i += LPP) {
      const p = Buffer.from(lines.slice(i, i + LPP).join('\n'));
      const len = Buffer.alloc(4);
      len.writeUInt32LE(p.length);
      parts.push(len, p);
    }
    all = Buffer.concat(parts);
    if (file !== undefined) writeFileSync(file, all);
  }
  const out = [];
  for (let at = 0; at < all.length; ) {
    const len = all.readUInt32LE(at);
    out.push(all.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return out;
}

const SLAB_DATAGRAMS = 32;
const STRIDE = 8192;
const slab = Buffer.alloc(SLAB_DATAGRAMS * STRIDE);

/** Feeds packets as the UDP batch reader does: each copied into the next slot of one reused slab. */
function feed(rx, pkts) {
  for (let i = 0; i < pkts.length; i++) {
    const p = pkts[i];
    const at = (i % SLAB_DATAGRAMS) * STRIDE;
    p.copy(slab, at);
    rx.statsd(slab, at, at + p.length);
  }
}

function newTarget() {
  const agg = new Aggregator({ hostname: 'bench', selfMetrics: false });
  return { agg, rx: agg.target(componentContext({ logger: silentLogger(), stats: agg.stats }, 'embedded')) };
}

function cpuUs(since) {
  const d = process.cpuUsage(since);
  return d.user + d.system;
}

const contexts = Number(process.env.FS_CONTEXTS ?? 200_000);
const secondRounds = Number(process.env.FS_SECOND ?? 1);
const warmup = Number(process.env.FS_WARMUP ?? 20_000);
const closeBetween = process.env.FS_CLOSE === '1';
if (contexts % LPP !== 0 || warmup % LPP !== 0) throw new Error('FS_CONTEXTS and FS_WARMUP must be multiples of 20');

if (warmup > 0) {
  const w = newTarget();
  for (let r = 0; r <= 3; r++) feed(w.rx, packets('warm.mixed', warmup, r));
  w.agg.closeWindow();
}

const first = packets('bench.s7', contexts, 0);
const again = [];
for (let r = 1; r <= secondRounds; r++) again.push(packets('bench.s7', contexts, r));
globalThis.gc?.();

const { agg, rx } = newTarget();
const heap0 = process.memoryUsage().heapUsed;
const c0 = process.cpuUsage();
feed(rx, first);
const firstUs = cpuUs(c0);
globalThis.gc?.();
const heap1 = process.memoryUsage().heapUsed;
let closeUs = 0;
if (closeBetween) {
  const c = process.cpuUsage();
  agg.closeWindow();
  closeUs = cpuUs(c);
}
const c1 = process.cpuUsage();
for (const pkts of again) feed(rx, pkts);
const secondUs = cpuUs(c1);

const copy0 = process.cpuUsage();
for (const pkts of [first, ...again]) for (let i = 0; i < pkts.length; i++) pkts[i].copy(slab, (i % SLAB_DATAGRAMS) * STRIDE);
const copyUs = cpuUs(copy0) / (contexts * (1 + secondRounds));

if (agg.contextCount !== contexts) throw new Error(`expected ${contexts} contexts, the table has ${agg.contextCount}`);
const gcNote = globalThis.gc === undefined ? ' (no --expose-gc: heap not collected before reading)' : '';
console.log(
  `first sight  ${(firstUs / contexts).toFixed(2)} µs CPU/line  (${contexts} new contexts, ${(firstUs / 1000).toFixed(0)} ms)\n` +
    `second sight ${secondRounds > 0 ? (secondUs / (contexts * secondRounds)).toFixed(2) : '-'} µs CPU/line  (${secondRounds} round(s)${closeBetween ? `, after a window close of ${(closeUs / 1000).toFixed(0)} ms` : ', same window'})\n` +
    `slab copy    ${copyUs.toFixed(3)} µs CPU/line (included above)\n` +
    `heap used by first sight ${((heap1 - heap0) / 2 ** 20).toFixed(1)} MiB, ${((heap1 - heap0) / contexts).toFixed(0)} B/context${gcNote}`,
);
