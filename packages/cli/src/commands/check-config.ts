/**
 * `metrics-distributor check-config <file>`: validates a config file as start-up would (defaults <
 * file < environment) and prints the effective settings as JSON, secrets masked.
 */
import { isMdError } from '@metrics-distributor/core';
import { buildConfig, OPTIONS, readConfigFile, type ServerConfig } from '../config.js';

/** What a masked secret shows. */
export const MASK = '***';

/** Replaces every string in a secret's value with {@link MASK}; a drain credential's `app` tag is not secret and stays. */
function mask(value: unknown): unknown {
  if (value === undefined || value === null) return value;
  if (Array.isArray(value)) return value.map(mask);
  if (typeof value === 'object') return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, k === 'app' ? v : mask(v)]));
  return MASK;
}

/** The effective settings with every `secret` option masked, in option order. */
export function maskedSettings(config: ServerConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const opt of OPTIONS) {
    const v = config[opt.key];
    out[opt.key] = opt.secret === true ? mask(v) : v;
  }
  return out;
}

/** Runs the command; returns the exit code: 0 valid, 2 invalid (the message names the key or file). */
export function runCheckConfig(path: string, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): number {
  let config: ServerConfig;
  try {
    config = buildConfig(readConfigFile(path), {}, path);
  } catch (e) {
    if (!isMdError(e)) throw e;
    err.write(`metrics-distributor: ${path}: ${e.message}\n`);
    return 2;
  }
  // undefined keeps its key in the output (as null), so a reader sees every option that exists.
  out.write(`${JSON.stringify(maskedSettings(config), (_k, v: unknown) => (v === undefined ? null : v), 2)}\n`);
  return 0;
}
