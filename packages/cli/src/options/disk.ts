/** Options of the disk buffer between the windows and the sinks (`--data-dir`). */
import { parseInteger, parseString, type OptionsOf } from './parse.js';

/** The validated settings of this part. */
export interface DiskConfig {
  dataDir: string | undefined;
  dataDirMaxBytes: number;
}

/** This part's options, in help order. */
export const DISK_OPTIONS: readonly OptionsOf<DiskConfig>[] = [
  { key: 'dataDir', flag: '--data-dir', arg: '<path>', description: 'keep every window on disk until each sink delivered it, replayed after a restart (default off: memory only; recommended in production)', parse: (raw) => { const p = parseString(raw); return p === '' ? undefined : p; }, default: () => undefined },
  { key: 'dataDirMaxBytes', flag: '--data-dir-max-bytes', arg: '<bytes>', description: 'bytes the data directory may take per sink; the oldest windows are dropped beyond (default 1073741824)', parse: parseInteger(4096), default: () => 1024 * 1024 * 1024 },
];
