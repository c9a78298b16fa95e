import { isMdError, MdError } from '@metrics-distributor/core';
import { ADMIN_OPTIONS, type AdminConfig } from './options/admin.js';
import { CORE_OPTIONS, type CoreConfig } from './options/core.js';
import { DATADOG_OPTIONS, type DatadogConfig } from './options/datadog.js';
import { GRAPHITE_OPTIONS, type GraphiteConfig } from './options/graphite.js';
import { DISK_OPTIONS, type DiskConfig } from './options/disk.js';
import { HTTP_OPTIONS, type HttpConfig } from './options/http.js';
import { readDataFile, type OptionsOf } from './options/parse.js';
import { OTLP_OPTIONS, type OtlpConfig } from './options/otlp.js';
import { PROMETHEUS_OPTIONS, type PrometheusConfig } from './options/prometheus.js';
import { STATSD_OPTIONS, type StatsdConfig } from './options/statsd.js';
import { TLS_OPTIONS, checkTls, type TlsConfig } from './options/tls.js';
import { TRANSFORM_OPTIONS, checkTransform, type TransformConfig } from './options/transform.js';

export { parseDurationMs, parseListen } from './options/parse.js';
export type { HttpCredential, ListenAddress, OptionSpec } from './options/parse.js';

/** The validated, frozen server configuration: every part's settings. Durations are milliseconds. */
export type ServerConfig = CoreConfig & StatsdConfig & HttpConfig & DatadogConfig & TransformConfig & GraphiteConfig & OtlpConfig & AdminConfig & PrometheusConfig & DiskConfig & TlsConfig;

/** Every option, in help order. A new front-end or sink adds its part under `options/` and here. */
export const OPTIONS: readonly OptionsOf<ServerConfig>[] = [...STATSD_OPTIONS, ...CORE_OPTIONS, ...DISK_OPTIONS, ...TRANSFORM_OPTIONS, ...HTTP_OPTIONS, ...TLS_OPTIONS, ...DATADOG_OPTIONS, ...GRAPHITE_OPTIONS, ...OTLP_OPTIONS, ...ADMIN_OPTIONS, ...PROMETHEUS_OPTIONS];

/** Finds the closest known key, for "did you mean" hints. */
function closest(key: string): string | undefined {
  const lower = key.toLowerCase().replace(/[-_]/g, '');
  return OPTIONS.find((o) => o.key.toLowerCase().startsWith(lower.slice(0, 6)))?.key;
}

/** Reads a JSON or YAML config file into a plain object, keys not yet validated. */
export function readConfigFile(path: string): Record<string, unknown> {
  return readDataFile(path, 'config file');
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
  const byKey = new Map(OPTIONS.flatMap((o) => [o.key as string, ...(o.fileKeys ?? [])].map((k) => [k, o] as const)));
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
    // The camelCase key or one of the agent's names for it: both at once is ambiguous, so refused.
    const fileKeys = [opt.key as string, ...(opt.fileKeys ?? [])].filter((k) => fromFile[k] !== undefined);
    if (fileKeys.length > 1) throw new MdError('MD_ERR_CONFIG_INVALID', `keys ${fileKeys.map((k) => `'${k}'`).join(' and ')} in ${source} set the same option; keep one`);
    const fileKey = fileKeys[0] ?? opt.key;
    const raw = fromFlag ?? fromEnv ?? fromFile[fileKey];
    const where = fromFlag !== undefined ? `option ${opt.flag}` : fromEnv !== undefined ? `environment variable ${opt.env}` : `key '${fileKey}' in ${source}`;
    if (raw === undefined) {
      out[opt.key] = opt.default();
      continue;
    }
    try {
      out[opt.key] = opt.parse(raw);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new MdError(isMdError(err) ? err.code : 'MD_ERR_CONFIG_INVALID', `invalid ${where}: ${msg}`, { cause: err });
    }
  }
  try {
    checkTransform(out as unknown as TransformConfig);
  } catch (err) {
    throw new MdError(isMdError(err) ? err.code : 'MD_ERR_CONFIG_INVALID', `invalid transform options: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  // Reads the files: a missing or mismatched pair fails start-up (and check-config) naming the file.
  checkTls(out as unknown as TlsConfig);
  // The Datadog agent's habit: an API key in the environment means "ship to Datadog".
  if (fromFlags.sinks === undefined && fromFile['sinks'] === undefined && out['datadogApiKey'] !== undefined) out['sinks'] = ['datadog'];
  const sinks = out['sinks'] as string[];
  if (sinks.includes('datadog') && out['datadogApiKey'] === undefined) {
    throw new MdError('MD_ERR_CONFIG_INVALID', 'invalid option --sink: the datadog sink needs --datadog-api-key or DD_API_KEY');
  }
  if (sinks.includes('prometheus') && out['prometheusListen'] === undefined && out['prometheusRemoteWriteUrl'] === undefined) {
    throw new MdError('MD_ERR_CONFIG_INVALID', 'invalid option --prometheus-listen: off needs --prometheus-remote-write-url, or the prometheus sink has nothing to do');
  }
  if (out['checkpointOpenWindowMs'] !== undefined && out['dataDir'] === undefined) {
    throw new MdError('MD_ERR_CONFIG_INVALID', 'invalid option --checkpoint-open-window: it writes to --data-dir, which is not set');
  }
  return Object.freeze(out) as unknown as ServerConfig;
}
