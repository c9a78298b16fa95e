/** Options of the admin listener (status page, `/metrics`, `/api/*`, health), see @metrics-distributor/admin. */
import type { AdminCredential } from '@metrics-distributor/admin';
import { fail, parseListen, type ListenAddress, type OptionsOf } from './parse.js';

/** The validated settings of this part. */
export interface AdminConfig {
  admin: ListenAddress | undefined;
  adminAuth: readonly AdminCredential[];
}

/**
 * The default admin address: etsy statsd's admin port. A host running etsy statsd too already holds
 * it, so failing to bind this address (and only this one) warns instead of failing start-up.
 */
export const DEFAULT_ADMIN_ADDRESS: Readonly<ListenAddress> = Object.freeze({ host: '127.0.0.1', port: 8126 });

/** Whether `a` is the default admin address. */
export function isDefaultAdminAddress(a: ListenAddress): boolean {
  return a.host === DEFAULT_ADMIN_ADDRESS.host && a.port === DEFAULT_ADMIN_ADDRESS.port;
}

/**
 * Parses `user:pass` (repeatable), never echoing a credential in the error. Split here rather than
 * with admin's parseCredential: importing the admin package loads fastify, which a run with
 * `--admin off` (and every UDP worker, which parses the config too) should not pay for.
 */
function parseAdminCredentials(raw: unknown): AdminCredential[] {
  const items = Array.isArray(raw) ? (raw as unknown[]) : [raw];
  return items.map((item, i) => {
    const colon = typeof item === 'string' ? item.indexOf(':') : -1;
    if (typeof item !== 'string' || colon <= 0) fail(`credential #${i + 1} must be user:pass with a non-empty user`);
    return { user: item.slice(0, colon), password: item.slice(colon + 1) };
  });
}

/** This part's options, in help order. */
export const ADMIN_OPTIONS: readonly OptionsOf<AdminConfig>[] = [
  { key: 'admin', flag: '--admin', arg: '<host:port|off>', description: 'admin listener: status page, /metrics, /api/status, /healthz, /readyz (default 127.0.0.1:8126)', parse: parseListen, default: () => ({ ...DEFAULT_ADMIN_ADDRESS }) },
  { key: 'adminAuth', flag: '--admin-auth', arg: '<user:pass>', repeatable: true, secret: true, description: 'HTTP Basic credential for the admin listener, repeatable; required unless it listens on loopback', parse: parseAdminCredentials, default: () => [] },
];
