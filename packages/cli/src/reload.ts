/**
 * SIGHUP: re-read the config file and apply what can change without a restart. The new config is
 * validated exactly as at start-up (flags still win over it); a bad one is logged and ignored.
 */
import { isMdError, type Logger, type StatsRegistry } from '@metrics-distributor/core';
import { buildConfig, readConfigFile, type ServerConfig } from './config.js';
import { TRANSFORM_OPTIONS } from './options/transform.js';
import type { RunningServer } from './server.js';

/** Keys a reload always applies; every other changed key is listed as needing a restart. */
export const RELOADABLE_KEYS: readonly (keyof ServerConfig)[] = ['httpAuth', 'adminAuth', 'logLevel', 'httpTlsCert', 'httpTlsKey', 'adminTlsCert', 'adminTlsKey'];

/** The keys that change which series a line becomes: the mapper, filters, namespace and global tags. */
export const RULE_KEYS: readonly (keyof ServerConfig)[] = ['tags', ...TRANSFORM_OPTIONS.map((o) => o.key)];

/**
 * Keys a reload applies to this server. The rules apply only with one process: UDP workers aggregate
 * with the rules they started with, and a window merged from two rule sets would mix their series.
 */
export function reloadableKeys(running: ServerConfig): readonly (keyof ServerConfig)[] {
  return running.workers === 1 ? [...RELOADABLE_KEYS, ...RULE_KEYS] : RELOADABLE_KEYS;
}

/** The self-metrics component reloads count on: `metrics_distributor.config_reloads_ok` and `config_reloads_failed`. */
export const RELOAD_COMPONENT = 'config';

/** Keys whose values differ between `a` and `b`, in option order. */
export function changedKeys(a: ServerConfig, b: ServerConfig): (keyof ServerConfig)[] {
  return (Object.keys(b) as (keyof ServerConfig)[]).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

/**
 * Sets the level of the root logger and of every long-lived child made from it: pino children copy
 * their parent's level when made, so changing the root's alone would leave the components as they were.
 */
export class LevelControl {
  private readonly children = new Set<WeakRef<Logger>>();

  /** Pass as `onChild` of the root logger. Per-request children (fastify's, with `reqId`) die with their request and are not kept. */
  readonly onChild = (child: Logger): void => {
    if ('reqId' in child.bindings()) return;
    this.children.add(new WeakRef(child));
  };

  /** Sets `level` on `root` and on every child still alive. */
  setLevel(root: Logger, level: string): void {
    root.level = level;
    for (const ref of this.children) {
      const child = ref.deref();
      if (child === undefined) this.children.delete(ref);
      else child.level = level;
    }
  }
}

/** What a reload needs from the process. */
export interface ReloadDeps {
  /** The `--config` file; undefined without one (then only the flags, and the certificate files, are re-read). */
  configPath: string | undefined;
  /** The command line's values: they win over the file on every reload too. */
  fromFlags: Partial<Record<keyof ServerConfig, unknown>>;
  server: RunningServer;
  logger: Logger;
  levels: LevelControl;
  stats: StatsRegistry;
}

/** The outcome of one reload: the config now running, or why the new one was refused. */
export type ReloadResult = { ok: true; config: ServerConfig; applied: string[]; restart: string[] } | { ok: false; reason: string; code: string };

/**
 * Reads and validates the file, applies the reloadable keys and returns the config now in effect:
 * the new values of those keys, the running values of the rest (so a key needing a restart is listed
 * again on every reload until there is one).
 */
export function reloadConfig(running: ServerConfig, deps: ReloadDeps): ReloadResult {
  const { logger } = deps;
  const counts = deps.stats.component(RELOAD_COMPONENT);
  let next: ServerConfig;
  try {
    next = buildConfig(deps.configPath !== undefined ? readConfigFile(deps.configPath) : {}, deps.fromFlags, deps.configPath ?? 'config file');
    deps.server.applyReload(next);
  } catch (err) {
    if (!isMdError(err)) throw err;
    counts.count('config_reloads_failed');
    // The message only, not the cause: a YAML parser's error quotes the file's text, credentials included.
    logger.error({ code: err.code, configPath: deps.configPath }, `Config reload refused, the running config stays: ${err.message}.`);
    return { ok: false, reason: err.message, code: err.code };
  }
  const changed = changedKeys(running, next);
  const reloadable = reloadableKeys(running);
  const applied = changed.filter((k) => reloadable.includes(k));
  const restart = changed.filter((k) => !reloadable.includes(k));
  if (next.logLevel !== running.logLevel) deps.levels.setLevel(logger, next.logLevel);
  const effective = { ...running } as Record<string, unknown>;
  for (const k of reloadable) effective[k] = next[k];
  counts.count('config_reloads_ok');
  if (restart.length > 0) logger.warn({ keys: restart }, 'Config reloaded; these changed keys need a restart and keep their running values.');
  // Certificates are re-read on every reload even with the same paths, so they count as applied.
  logger.info({ keys: applied, configPath: deps.configPath }, 'Config reloaded.');
  return { ok: true, config: Object.freeze(effective) as unknown as ServerConfig, applied, restart };
}
