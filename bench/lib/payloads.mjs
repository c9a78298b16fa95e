// Payloads. Lines of one kind have equal width, so the GSO sender pads (almost) nothing.
import { LPP } from './options.mjs';

export function counterLines(prefix, names) {
  const w = String(names - 1).length;
  return Array.from({ length: names }, (_, i) => `${prefix}.${String(i).padStart(w, '0')}:1|c`);
}

/** Composition of every 20-line mixed packet: c×4, g×4, ms×3 (@0.5), h×3, s×3, d×3. */
export const MIX = ['c', 'g', 'ms', 'h', 's', 'd', 'c', 'g', 'ms', 'h', 's', 'd', 'c', 'g', 'ms', 'h', 's', 'd', 'c', 'g'];
export const MIX_PER_PACKET = { c: 4, g: 4, ms: 3, h: 3, s: 3, d: 3 };

/**
 * Mixed DogStatsD lines, each with 2 tags. Context k (of `contexts`, a multiple of 20) always has type
 * MIX[k % 20], so every packet the sender builds from 20 consecutive lines has the composition above.
 * `cycles` repeats the contexts with other values and set members.
 */
export function mixedLines(prefix, contexts, cycles) {
  if (contexts % LPP !== 0) throw new Error('contexts must be a multiple of 20');
  const w = String(contexts - 1).length;
  const out = [];
  for (let j = 0; j < contexts * cycles; j++) {
    const k = j % contexts;
    const r = Math.floor(j / contexts);
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
