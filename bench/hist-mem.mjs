// In-process size of one heavy histogram context: core's HistogramAgg fed 1M samples.
//   node --expose-gc hist-mem.mjs <samples> <instances>
// Its typed arrays live outside the V8 heap, so they are measured exactly from
// process.memoryUsage().arrayBuffers over <instances> heavy histograms. The JS objects around them are
// a few hundred bytes, below the heap's noise for a handful of instances, so they are measured over
// 2,000 histograms in the same sketch mode (5,000 samples each). Both after a full GC. Also prints
// the histogram's own byteSize() estimate.
import { HistogramAgg } from '@metrics-distributor/core';

const samples = Number(process.argv[2] ?? 1_000_000);
const instances = Number(process.argv[3] ?? 8);
const gc = globalThis.gc;
if (typeof gc !== 'function') throw new Error('run with --expose-gc');

// Array-buffer backing stores are freed a little after GC: collect, wait, repeat.
const settle = async () => {
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 40));
  }
  return process.memoryUsage();
};
// Latency-like values spread over five decades, so the sketch grows as many bins as it would in use.
const fill = (h, n) => {
  for (let i = 0; i < n; i++) h.add(0.05 + ((i * 7919) % 100_003) * (1 + (i % 97)) * 0.01);
  return h;
};

const keep = [];
// One of each first, outside the measurement: JIT code and any lazily built shared tables are then
// already in the "before" snapshots.
keep.push(fill(new HistogramAgg(), samples), fill(new HistogramAgg(), 5000));

let before = await settle();
let byteSize = 0;
let exact = true;
for (let k = 0; k < instances; k++) {
  const h = fill(new HistogramAgg(), samples);
  byteSize = h.byteSize();
  exact = h.isExact;
  keep.push(h);
}
let after = await settle();
const arrayBufferBytesPerInstance = Math.round((after.arrayBuffers - before.arrayBuffers) / instances);
const heavyHeapBytesPerInstance = Math.round((after.heapUsed - before.heapUsed) / instances);

const SHELLS = 2000;
before = await settle();
for (let k = 0; k < SHELLS; k++) keep.push(fill(new HistogramAgg(), 5000));
after = await settle();
const heapBytesPerInstance = Math.round((after.heapUsed - before.heapUsed) / SHELLS);

console.log(JSON.stringify({
  samples,
  instances,
  byteSize,
  exact,
  arrayBufferBytesPerInstance,
  heapBytesPerInstance,
  heavyHeapBytesPerInstance,
  retainedBytesPerInstance: arrayBufferBytesPerInstance + heapBytesPerInstance,
  kept: keep.length,
}));
