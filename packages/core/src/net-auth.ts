/**
 * The pure pieces of HTTP authentication every listener shares (the HTTP front-end, the admin
 * listener): `Authorization` header parsing, secrets compared in constant time, and the loopback
 * check that decides whether a listener may run without credentials. node:crypto and node:net only.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';

function digest(v: string | Buffer): Buffer {
  return createHash('sha256').update(v).digest();
}

/**
 * Compares two secrets in time that does not depend on where they differ or on their lengths:
 * both sides are hashed to 32-byte SHA-256 digests, which `timingSafeEqual` then compares. Hashing
 * first is what makes unequal lengths safe (timingSafeEqual itself throws on them).
 */
export function constantTimeEqual(a: string | Buffer, b: string | Buffer): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** What the `Authorization` header carried, decoded; undefined when absent or unusable. */
export type PresentedAuth = { kind: 'basic'; user: string; password: string } | { kind: 'bearer'; token: string };

/**
 * Decodes `Basic base64(user[:password])` (standard or URL-safe alphabet; l2met-style `token` or
 * `token:` gives an empty password) or `Bearer <token>`. The scheme is case-insensitive.
 */
export function parseAuthorization(header: string | undefined): PresentedAuth | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*(\S+)\s+(\S+)\s*$/.exec(header);
  if (m === null) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'bearer') return { kind: 'bearer', token: m[2]! };
  if (scheme !== 'basic') return undefined;
  const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  return i < 0 ? { kind: 'basic', user: decoded, password: '' } : { kind: 'basic', user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

/**
 * Configured user/password pairs, kept only as SHA-256 digests. A match compares the presented pair
 * with every credential, all the way through, so its time says neither which one matched nor where
 * the presented values differ.
 */
export class CredentialDigests {
  private readonly creds: { user: Buffer; password: Buffer }[];

  constructor(credentials: readonly { user: string; password: string }[]) {
    this.creds = credentials.map((c) => ({ user: digest(c.user), password: digest(c.password) }));
  }

  /** Number of credentials. */
  get size(): number {
    return this.creds.length;
  }

  /** Index of the first credential equal to (user, password), or -1. */
  match(user: string, password: string): number {
    const u = digest(user);
    const p = digest(password);
    let found = -1;
    for (let i = 0; i < this.creds.length; i++) {
      const c = this.creds[i]!;
      // Both comparisons always run (no &&), and the loop never exits early.
      const userOk = timingSafeEqual(u, c.user);
      const passOk = timingSafeEqual(p, c.password);
      if (userOk && passOk && found < 0) found = i;
    }
    return found;
  }
}

/** Loopback ranges; BlockList also matches the long IPv6 forms and IPv4-mapped `::ffff:127.x`. */
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
