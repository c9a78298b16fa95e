// Counting what comes out of our console sink: counter totals, and the mixed packets' cross-checks.
import { LPP } from './options.mjs';
import { MIX_PER_PACKET } from './payloads.mjs';

/** Counter totals (rate × interval) for metrics under `prefix` in our console-sink output. */
export function counterTally(prefix) {
  let total = 0;
  return {
    onSeries(o) {
      if (typeof o.metric !== 'string' || !o.metric.startsWith(prefix)) return;
      if (o.type === 'rate') total += o.value * o.interval;
      else if (o.type === 'count') total += o.value;
    },
    result(lpp) {
      const lines = Math.round(total);
      return { lines, packets: lines / lpp };
    },
  };
}

/**
 * Mixed traffic: every received packet carries 4 `c` lines of value 1, so packets = Σc / 4 and
 * lines = packets × 20. Checked against the histogram `.count` totals (h: 3 per packet; ms@0.5: 3
 * lines of weight 2) and the distributions' `count` (3 per packet).
 */
export function mixedTally(prefix) {
  const sums = { c: 0, h: 0, ms: 0, d: 0 };
  const p = `${prefix}.`;
  return {
    onSeries(o) {
      const m = o.metric;
      if (typeof m !== 'string' || !m.startsWith(p)) return;
      const t = m.slice(p.length, m.indexOf('.', p.length));
      if (t === 'c' && (o.type === 'rate' || o.type === 'count')) sums.c += o.type === 'rate' ? o.value * o.interval : o.value;
      else if ((t === 'h' || t === 'ms') && m.endsWith('.count')) sums[t] += o.type === 'rate' ? o.value * o.interval : o.value;
      else if (t === 'd' && o.type === 'distribution' && typeof o.count === 'number') sums.d += o.count;
    },
    result() {
      const packets = Math.round(sums.c) / MIX_PER_PACKET.c;
      const checks = { fromH: Math.round(sums.h) / MIX_PER_PACKET.h, fromMs: Math.round(sums.ms) / (MIX_PER_PACKET.ms * 2), fromD: Math.round(sums.d) / MIX_PER_PACKET.d };
      const maxDev = Math.max(...Object.values(checks).map((x) => Math.abs(x - packets)));
      return { packets, lines: packets * LPP, checks, consistent: maxDev <= 1 };
    },
  };
}
