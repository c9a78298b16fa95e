/** TLS certificate and key files of the HTTP drain listener and the admin listener. */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MdError } from '@metrics-distributor/core';
import { parseString, type OptionsOf } from './parse.js';

/** The validated settings of this part: file paths, read at start-up and again on every reload. */
export interface TlsConfig {
  httpTlsCert: string | undefined;
  httpTlsKey: string | undefined;
  adminTlsCert: string | undefined;
  adminTlsKey: string | undefined;
}

/** A certificate and key as read from their files, checked to belong together. */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/** This part's options, in help order. */
export const TLS_OPTIONS: readonly OptionsOf<TlsConfig>[] = [
  { key: 'httpTlsCert', flag: '--http-tls-cert', arg: '<file>', description: 'PEM certificate (chain) for the HTTP drain listener: it then speaks HTTPS; re-read on SIGHUP', parse: parseString, default: () => undefined },
  { key: 'httpTlsKey', flag: '--http-tls-key', arg: '<file>', description: 'PEM private key for --http-tls-cert; re-read on SIGHUP', parse: parseString, default: () => undefined },
  { key: 'adminTlsCert', flag: '--admin-tls-cert', arg: '<file>', description: 'PEM certificate (chain) for the admin listener: it then speaks HTTPS; re-read on SIGHUP', parse: parseString, default: () => undefined },
  { key: 'adminTlsKey', flag: '--admin-tls-key', arg: '<file>', description: 'PEM private key for --admin-tls-cert; re-read on SIGHUP', parse: parseString, default: () => undefined },
];

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw new MdError('MD_ERR_CONFIG_TLS_UNREADABLE', `cannot read ${what} ${path}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Reads a certificate and key and checks that the key is the certificate's, so a renewal that wrote
 * one file but not yet the other is refused instead of failing every handshake. Errors name the file.
 */
export function readTlsFiles(certPath: string, keyPath: string): TlsFiles {
  const cert = readPem(certPath, 'TLS certificate');
  const key = readPem(keyPath, 'TLS key');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (cause) {
    throw new MdError('MD_ERR_CONFIG_TLS_UNREADABLE', `TLS certificate ${certPath} is not a PEM certificate`, { cause });
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (cause) {
    throw new MdError('MD_ERR_CONFIG_TLS_UNREADABLE', `TLS key ${keyPath} is not a PEM private key (encrypted keys are not supported)`, { cause });
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new MdError('MD_ERR_CONFIG_TLS_MISMATCH', `TLS key ${keyPath} does not belong to the certificate ${certPath}`);
  }
  return { cert, key };
}

/** The pair of one listener, or undefined without TLS; throws when only one of the two files is given. */
export function tlsPairOf(cert: string | undefined, key: string | undefined, flag: '--http-tls' | '--admin-tls'): TlsFiles | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) throw new MdError('MD_ERR_CONFIG_INVALID', `invalid option ${flag}-${cert === undefined ? 'cert' : 'key'}: ${flag}-cert and ${flag}-key go together`);
  return readTlsFiles(cert, key);
}

/** Checks both listeners' pairs once at start-up (and by check-config, and on reload). */
export function checkTls(c: TlsConfig): void {
  tlsPairOf(c.httpTlsCert, c.httpTlsKey, '--http-tls');
  tlsPairOf(c.adminTlsCert, c.adminTlsKey, '--admin-tls');
}
