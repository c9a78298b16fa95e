import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { MdError } from '@metrics-distributor/core';
import { CORE_OPTIONS, type CoreConfig } from './options/core.js';
import { DATADOG_OPTIONS, type DatadogConfig } from './options/datadog.js';
import { DISK_OPTIONS, type DiskConfig } from './options/disk.js';
import { HTTP_OPTIONS, type HttpConfig } from './options/http.js';
import type { OptionsOf } from './options/parse.js';
import { STATSD_OPTIONS, type StatsdConfig } from './options/statsd.js';

export { parseDurationMs, parseListen } from './options/parse.js';
export type { HttpCredential, ListenAddress, OptionSpec } from './options/parse.js';

/** The validated, frozen server configuration: every part's settings. Durations are milliseconds. */
export type ServerConfig = CoreConfig & StatsdConfig & HttpConfig & DatadogConfig & DiskConfig;

/** Every option, in help order. A new front-end or sink adds its part under `options/` and here. */
export const OPTIONS: readonly OptionsOf<ServerConfig>[] = [...STATSD_OPTIONS, ...CORE_OPTIONS, ...DISK_OPTIONS, ...HTTP_OPTIONS, ...DATADOG_OPTIONS];

/** Finds the closest known key, for "did you mean" hints. */
function closest(key: string): string | undefined {
  const lower = key.toLowerCase().replace(/[-_]/g, '');
  return OPTIONS.find((o) => o.key.toLowerCase().startsWith(lower.slice(0, 6)))?.key;
}

/** Reads a JSON or YAML config file into a plain object, keys not yet validated. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new MdError('MD_ERR_CONFIG_INVALID', `cannot read config file ${path}`, { cause });
  }
  let data: unknown;
  try {
    data = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (cause) {
    throw new MdError('MD_ERR_CONFIG_INVALID', `config file ${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}`, { cause });
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new MdError('MD_ERR_CONFIG_INVALID', `config file ${path} must hold an object`);
  return data as Record<string, unknown>;
}

/**
 * Validates once and freezes: defaults < config file < command-line flags.
 * Unknown file keys are rejected with an error that names the key.
 */
export function buildConfig(
  fromFile: Record<string, unknown>,
  fromFlags: Partial<Record<keyof ServerConfig, unknown>>,
  source = 'config file',
  env: NodeJS.ProcessEnv = process.env,
): ServerConfig {
  const byKey = new Map(OPTIONS.map((o) => [o.key as string, o]));
  for (const key of Object.keys(fromFile)) {
    if (!byKey.has(key)) {
      const hint = closest(key);
      throw new MdError('MD_ERR_CONFIG_UNKNOWN_KEY', `unknown key '${key}' in ${source}${hint !== undefined ? ` (did you mean '${hint}'?)` : ''}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const opt of OPTIONS) {
    const fromFlag = fromFlags[opt.key];
    const fromEnv = opt.env !== undefined && env[opt.env] !== undefined && env[opt.env] !== '' ? env[opt.env] : undefined;
    const raw = fromFlag ?? fromEnv ?? fromFile[opt.key];
    const where = fromFlag !== undefined ? `option ${opt.flag}` : fromEnv !== undefined ? `environment variable ${opt.env}` : `key '${opt.key}' in ${source}`;
    if (raw === undefined) {
      out[opt.key] = opt.default();
      continue;
    }
    try {
      out[opt.key] = opt.parse(raw);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new MdError('MD_ERR_CONFIG_INVALID', `invalid ${where}: ${msg}`, { cause: err });
    }
  }
  // The Datadog agent's habit: an API key in the environment means "ship to Datadog".
  if (fromFlags.sinks === undefined && fromFile['sinks'] === undefined && out['datadogApiKey'] !== undefined) out['sinks'] = ['datadog'];
  const sinks = out['sinks'] as string[];
  if (sinks.includes('datadog') && out['datadogApiKey'] === undefined) {
    throw new MdError('MD_ERR_CONFIG_INVALID', 'invalid option --sink: the datadog sink needs --datadog-api-key or DD_API_KEY');
  }
  return Object.freeze(out) as unknown as ServerConfig;
}
