/** Options of the HTTP log-drain listener. */
import { parseListen, parseInteger, parseString, parseCredentials, parseBool, type HttpCredential, type ListenAddress, type OptionsOf } from './parse.js';

/** The validated settings of this part; durations are milliseconds. */
export interface HttpConfig {
  http: ListenAddress | undefined;
  httpAuth: readonly HttpCredential[];
  httpMaxBodyBytes: number;
  httpAllowUnauthenticated: boolean;
  vercelSecret: string | undefined;
}

/**
 * `--http`'s value, or a bare port as Heroku's `PORT` gives it: then every interface, since the
 * platform's router connects from outside; the credentials rule still applies.
 */
function parseHttpListen(raw: unknown): ListenAddress | undefined {
  if (typeof raw === 'number' || (typeof raw === 'string' && /^\d{1,5}$/.test(raw.trim()))) return parseListen(`0.0.0.0:${String(raw).trim()}`);
  return parseListen(raw);
}

/** This part's options, in help order. */
export const HTTP_OPTIONS: readonly OptionsOf<HttpConfig>[] = [
  { key: 'http', flag: '--http', arg: '<host:port|off>', env: 'PORT', description: 'HTTP log-drain listener (default 127.0.0.1:8080; with PORT in the environment 0.0.0.0:$PORT)', parse: parseHttpListen, default: () => ({ host: '127.0.0.1', port: 8080 }) },
  { key: 'httpAuth', flag: '--http-auth', arg: '<user:pass>', repeatable: true, secret: true, env: 'MD_HTTP_AUTH', description: 'HTTP Basic credential for drains, repeatable (user:pass, token@ as user, or :password); env MD_HTTP_AUTH holds one', parse: parseCredentials, default: () => [] },
  { key: 'httpMaxBodyBytes', flag: '--http-max-body-bytes', arg: '<bytes>', description: 'largest drain body, decompressed (default 5242880)', parse: parseInteger(1), default: () => 5 * 1024 * 1024 },
  { key: 'httpAllowUnauthenticated', flag: '--http-allow-unauthenticated', description: 'allow a non-loopback HTTP listener without credentials', parse: parseBool, default: () => false },
  { key: 'vercelSecret', flag: '--vercel-secret', arg: '<secret>', secret: true, description: 'verify x-vercel-signature with this secret', parse: parseString, default: () => undefined },
];
