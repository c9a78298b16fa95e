/**
 * Drain authentication: HTTP Basic (and Bearer) credentials compared in constant time, and Vercel's
 * `x-vercel-signature` HMAC. Secrets never leave this module: nothing here logs or returns them.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';

/** One accepted credential; `app`, when set, becomes the `app:` tag of everything sent with it. */
export interface HttpCredential {
  /** Basic user. Alone (no password) it is a token: `https://token@host/logs` sends `token` or `token:`. */
  user?: string;
  /** Basic password. Alone (no user) it is `https://:secret@host/logs`: the user must be empty. */
  password?: string;
  /** `app` tag for drains using this credential; wins over `?app=` so one tenant cannot pose as another. */
  app?: string;
}

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
 * Decodes `Basic base64(user[:password])` (standard or URL-safe alphabet; l2met-style `token:` gives an
 * empty password) or `Bearer <token>`. The scheme is case-insensitive.
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

interface StoredCredential {
  user: Buffer;
  password: Buffer;
  app: string | undefined;
}

/** The outcome of a check: which credential matched (its index and app), or none. */
export type AuthResult = { ok: true; index: number; app: string | undefined } | { ok: false };

/**
 * The configured credentials, kept only as digests. A check compares the presented user and password
 * with every credential, all the way through, so its time does not reveal which one (if any) matched.
 */
export class CredentialStore {
  private readonly creds: StoredCredential[];

  constructor(credentials: readonly HttpCredential[]) {
    this.creds = credentials.map((c) => ({ user: digest(c.user ?? ''), password: digest(c.password ?? ''), app: c.app }));
  }

  /** Number of credentials; 0 means the server is open (only allowed on loopback or when explicitly allowed). */
  get size(): number {
    return this.creds.length;
  }

  /** Checks an already-decoded user and password. */
  check(user: string, password: string): AuthResult {
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
    return found < 0 ? { ok: false } : { ok: true, index: found, app: this.creds[found]!.app };
  }

  /**
   * Checks an `Authorization` header. A Bearer token matches a token-only credential
   * (`{ user }` or `{ password }`), which is how Fly's log shipper and custom Vercel headers send it.
   */
  checkHeader(header: string | undefined): AuthResult {
    const presented = parseAuthorization(header);
    if (presented === undefined) return { ok: false };
    if (presented.kind === 'basic') return this.check(presented.user, presented.password);
    const asUser = this.check(presented.token, '');
    const asPassword = this.check('', presented.token);
    return asUser.ok ? asUser : asPassword;
  }
}

/**
 * Verifies Vercel's `x-vercel-signature`: lowercase hex HMAC-SHA1 of the raw (still compressed) body
 * with the drain's secret, compared in constant time.
 */
export function verifyVercelSignature(secret: string, rawBody: Buffer, signature: string): boolean {
  const expected = createHmac('sha1', secret).update(rawBody).digest('hex');
  return constantTimeEqual(expected, signature.trim().toLowerCase());
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
