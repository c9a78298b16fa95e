// Number formatting for the table and the notes, and picking the best of repeated runs.

export function si(x) {
  if (!Number.isFinite(x)) return 'n/a';
  if (Math.abs(x) >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (Math.abs(x) >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
  return x.toFixed(x % 1 === 0 ? 0 : 1);
}
export const mib = (b) => (Number.isFinite(b) ? `${(b / 1048576).toFixed(1)} MiB` : 'n/a');
export const kib = (b) => (Number.isFinite(b) ? `${(b / 1024).toFixed(1)} KiB` : 'n/a');
export const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : NaN);
export const fmtRatio = (r) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : '—');
export const pct = (x) => (Number.isFinite(x) ? `${(x * 100).toFixed(x < 0.001 && x > 0 ? 4 : 2)}%` : 'n/a');
export const best = (runs, key) => runs.reduce((a, b) => (b[key] > a[key] ? b : a));
/** A blast figure; "≥" when the sender was the bottleneck, so the receiver's ceiling is higher. */
export const blastFig = (run, key, unit) => `${run.senderBound ? '≥ ' : ''}${si(run[key])} ${unit}${run.senderBound ? ' (sender-bound)' : ''}`;
