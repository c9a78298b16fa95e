/** Options of the disk buffer between the windows and the sinks (`--data-dir`). */
import { fail, parseDurationMs, parseInteger, parseString, type OptionsOf } from './parse.js';

/** The validated settings of this part. */
export interface DiskConfig {
  dataDir: string | undefined;
  dataDirMaxBytes: number;
  /** How often the open window is written to `<data-dir>/checkpoint/`; undefined: never. */
  checkpointOpenWindowMs: number | undefined;
}

/** This part's options, in help order. */
export const DISK_OPTIONS: readonly OptionsOf<DiskConfig>[] = [
  { key: 'dataDir', flag: '--data-dir', arg: '<path>', description: 'keep every window on disk until each sink delivered it, replayed after a restart (default off: memory only; recommended in production)', parse: (raw) => { const p = parseString(raw); return p === '' ? undefined : p; }, default: () => undefined },
  { key: 'dataDirMaxBytes', flag: '--data-dir-max-bytes', arg: '<bytes>', description: 'bytes the data directory may take per sink; the oldest windows are dropped beyond (default 1073741824)', parse: parseInteger(4096), default: () => 1024 * 1024 * 1024 },
  {
    key: 'checkpointOpenWindowMs',
    flag: '--checkpoint-open-window',
    arg: '<duration>',
    description: 'write the open window to <data-dir>/checkpoint/ this often (e.g. 5s), so a crash loses at most that much of it; needs --data-dir (default off)',
    parse: (raw) => {
      if (raw === 'off') return undefined;
      const ms = parseDurationMs(raw);
      if (ms <= 0) fail(`expected a duration above zero such as 5s, or off, got '${String(raw)}'`);
      return ms;
    },
    default: () => undefined,
  },
];
