/**
 * Basic credentials for the admin listener, compared in constant time. Kept here rather than imported
 * from frontend-http: packages share only public entries, and this one needs a tenth of that module.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';

/** One accepted admin credential. */
export interface AdminCredential {
  /** Basic user. */
  user: string;
  /** Basic password. */
  password: string;
}

function digest(v: string): Buffer {
  return createHash('sha256').update(v, 'utf8').digest();
}

/**
 * The configured credentials, kept only as SHA-256 digests: comparing fixed-length digests with
 * `timingSafeEqual` makes the time independent of where, and of how long, the presented values differ.
 */
export class AdminAuth {
  private readonly creds: { user: Buffer; password: Buffer }[];

  constructor(credentials: readonly AdminCredential[]) {
    this.creds = credentials.map((c) => ({ user: digest(c.user), password: digest(c.password) }));
  }

  /** True when credentials are configured, so every route but `/healthz` needs them. */
  get enabled(): boolean {
    return this.creds.length > 0;
  }

  /** Checks an `Authorization` header; true when auth is off or the header carries an accepted credential. */
  check(header: string | undefined): boolean {
    if (this.creds.length === 0) return true;
    const presented = parseBasic(header);
    // An absent header is still compared against something, so its answer takes about as long.
    const u = digest(presented?.user ?? '\u0000');
    const p = digest(presented?.password ?? '\u0000');
    let ok = false;
    for (const c of this.creds) {
      // Both comparisons always run and the loop never exits early: the time does not say which matched.
      const userOk = timingSafeEqual(u, c.user);
      const passOk = timingSafeEqual(p, c.password);
      ok = ok || (userOk && passOk);
    }
    return ok && presented !== undefined;
  }
}

/** Decodes `Basic base64(user:password)`; undefined when absent, another scheme, or without a colon. */
export function parseBasic(header: string | undefined): AdminCredential | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (m === null) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  return i < 0 ? undefined : { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

/** Parses `user:pass` as given to `--admin-auth`; undefined when there is no colon or the user is empty. */
export function parseCredential(spec: string): AdminCredential | undefined {
  const i = spec.indexOf(':');
  if (i <= 0) return undefined;
  return { user: spec.slice(0, i), password: spec.slice(i + 1) };
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** True for addresses only this machine can reach: `localhost`, 127.0.0.0/8, `::1`, `::ffff:127.x`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h.toLowerCase() === 'localhost') return true;
  const family = isIP(h);
  if (family === 0) return false;
  return LOOPBACK.check(h, family === 4 ? 'ipv4' : 'ipv6');
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
