/**
 * Basic credentials for the admin listener and the `Host` check of an open one. The header parsing,
 * the constant-time comparison and the loopback check are core's (shared with the HTTP front-end).
 */
import { CredentialDigests, isLoopbackHost, parseAuthorization } from '@metrics-distributor/core';

export { isLoopbackHost } from '@metrics-distributor/core';

/** One accepted admin credential. */
export interface AdminCredential {
  /** Basic user. */
  user: string;
  /** Basic password. */
  password: string;
}

/**
 * The configured credentials, kept only as digests (core's CredentialDigests): the time of a check
 * says neither which credential matched nor where the presented values differ.
 */
export class AdminAuth {
  private digests: CredentialDigests;

  constructor(credentials: readonly AdminCredential[]) {
    this.digests = new CredentialDigests(credentials);
  }

  /** Swaps in a new credential set (config reload); the next request is checked against it. */
  replace(credentials: readonly AdminCredential[]): void {
    this.digests = new CredentialDigests(credentials);
  }

  /** True when credentials are configured, so every route but `/healthz` needs them. */
  get enabled(): boolean {
    return this.digests.size > 0;
  }

  /** Checks an `Authorization` header; true when auth is off or the header carries an accepted credential. */
  check(header: string | undefined): boolean {
    if (this.digests.size === 0) return true;
    const presented = parseBasic(header);
    // An absent header is still compared against something, so its answer takes about as long.
    const found = this.digests.match(presented?.user ?? '\u0000', presented?.password ?? '\u0000');
    return found >= 0 && presented !== undefined;
  }
}

/** Decodes `Basic base64(user[:password])` (no colon: an empty password); undefined when absent or another scheme. */
export function parseBasic(header: string | undefined): AdminCredential | undefined {
  const p = parseAuthorization(header);
  return p?.kind === 'basic' ? { user: p.user, password: p.password } : undefined;
}

/** Parses `user:pass` as given to `--admin-auth`; undefined when there is no colon or the user is empty. */
export function parseCredential(spec: string): AdminCredential | undefined {
  const i = spec.indexOf(':');
  if (i <= 0) return undefined;
  return { user: spec.slice(0, i), password: spec.slice(i + 1) };
}

/** The host name of a `Host` header (`[::1]:8126` → `::1`, `Localhost:80` → `localhost`); undefined when unusable. */
export function hostName(header: string): string | undefined {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end < 0 ? undefined : h.slice(1, end);
  }
  const colon = h.indexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

/**
 * Whether a request with this `Host` may reach an open (credential-less) listener. Only loopback
 * names, and the names in `allowed`, are: a web page the operator visits could otherwise point a DNS
 * name it controls at 127.0.0.1 and read the status through the operator's browser (DNS rebinding).
 * A request without `Host` (HTTP/1.0 tools) is not a browser's and passes.
 */
export function hostAllowed(header: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (header === undefined) return true;
  const name = hostName(header);
  return name !== undefined && (isLoopbackHost(name) || allowed.has(name));
}
