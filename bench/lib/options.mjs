// What every scenario shares: the command-line flags and BENCH_* variables, the sizes of a full or a
// quick run, our server's base flags, the scratch directory, the progress log and the load generator.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_BIN as DEFAULT_CLI_BIN, buildSender } from '../harness.mjs';

export const QUICK = process.env.BENCH_QUICK === '1';
const argv = process.argv.slice(2);
function flag(name, fallback) {
  const i = argv.indexOf(name);
  if (i < 0) return fallback;
  const v = argv[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value`);
  return v;
}
// Each option also has a BENCH_* variable, for `pnpm bench`, which cannot pass flags through turbo.
const env = process.env;
export const SUSTAINED_SECONDS = Number(flag('--sustained-seconds', env.BENCH_SUSTAINED_SECONDS ?? (QUICK ? 5 : 60)));
export const SUSTAINED_RATE = Number(flag('--sustained-rate', env.BENCH_SUSTAINED_RATE ?? 1_000_000));
export const ONLY = flag('--only', env.BENCH_ONLY)?.split(',').map((s) => s.trim());
if (!(SUSTAINED_SECONDS > 0) || !(SUSTAINED_RATE > 0)) throw new Error('--sustained-seconds and --sustained-rate must be positive numbers');

/** Sizes per scenario: full run (about 10 minutes on 2 cores with P1–P4) and BENCH_QUICK=1 (about 4 minutes). */
export const SIZE = QUICK
  ? { repeats: 2, s1Packets: 1_200_000, s2Packets: 500_000, s3Packets: 800_000, etsySustainedMax: 2, s5Lines: 20_000_000, s5MaxSeconds: 2, s6Requests: 30_000, s6MaxSeconds: 2, s7Interval: 2, s7Windows: 2, s8Contexts: 100_000, s8HeavySamples: 1_000_000, histInstances: 8 }
  : { repeats: 4, s1Packets: 4_000_000, s2Packets: 1_500_000, s3Packets: 1_500_000, etsySustainedMax: 15, s5Lines: 80_000_000, s5MaxSeconds: 8, s6Requests: 100_000, s6MaxSeconds: 8, s7Interval: 5, s7Windows: 3, s8Contexts: 100_000, s8HeavySamples: 1_000_000, histInstances: 16 };

if (process.env.BENCH_REPEATS !== undefined) SIZE.repeats = Math.max(1, Number(process.env.BENCH_REPEATS));

export const LPP = 20;
export const UDP_RECV_BUFFER = 33_554_432;
export const OUR_BASE = [
  '--statsd-udp', '127.0.0.1:0',
  '--statsd-tcp', 'off',
  '--http', 'off',
  '--flush-interval', '1s',
  '--self-metrics', 'false',
  '--statsd-udp-recv-buffer-bytes', String(UDP_RECV_BUFFER),
  '--hostname', 'bench',
  // Extra server flags for every scenario, e.g. BENCH_SERVER_ARGS="--workers 2".
  ...(process.env.BENCH_SERVER_ARGS ?? '').split(/\s+/).filter(Boolean),
];

/** The server under test; BENCH_CLI points at another entry script (e.g. to test the harness itself). */
export const CLI_BIN = process.env.BENCH_CLI ?? DEFAULT_CLI_BIN;

export const TMP = mkdtempSync(join(tmpdir(), 'md-bench-'));
export const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);

let built;
/** The load generator, built (or chosen) once, on first use. */
export const sender = () => (built ??= buildSender());
