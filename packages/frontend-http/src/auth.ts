/**
 * Drain authentication: HTTP Basic (and Bearer) credentials compared in constant time, and Vercel's
 * `x-vercel-signature` HMAC. Secrets never leave this module: nothing here logs or returns them.
 */
import { createHmac } from 'node:crypto';
import { CredentialDigests, constantTimeEqual, parseAuthorization } from '@metrics-distributor/core';

/** One accepted credential; `app`, when set, becomes the `app:` tag of everything sent with it. */
export interface HttpCredential {
  /** Basic user. Alone (no password) it is a token: `https://token@host/logs` sends `token` or `token:`. */
  user?: string;
  /** Basic password. Alone (no user) it is `https://:secret@host/logs`: the user must be empty. */
  password?: string;
  /** `app` tag for drains using this credential; wins over `?app=` so one tenant cannot pose as another. */
  app?: string;
}

// The header parsing, constant-time compare and loopback check are core's, shared with the admin listener.
export { constantTimeEqual, isLoopbackHost, parseAuthorization } from '@metrics-distributor/core';
export type { PresentedAuth } from '@metrics-distributor/core';

/** The outcome of a check: which credential matched (its index and app), or none. */
export type AuthResult = { ok: true; index: number; app: string | undefined } | { ok: false };

/**
 * The configured credentials, kept only as digests. A check compares the presented user and password
 * with every credential, all the way through, so its time does not reveal which one (if any) matched.
 */
export class CredentialStore {
  private digests: CredentialDigests;
  private apps: (string | undefined)[];

  constructor(credentials: readonly HttpCredential[]) {
    this.digests = new CredentialDigests(credentials.map((c) => ({ user: c.user ?? '', password: c.password ?? '' })));
    this.apps = credentials.map((c) => c.app);
  }

  /** Swaps in a new credential set (config reload); the next check sees it, one already running finishes with the old. */
  replace(credentials: readonly HttpCredential[]): void {
    const next = new CredentialStore(credentials);
    // Both fields are assigned together in one synchronous step, so no check sees a mix of the two sets.
    this.digests = next.digests;
    this.apps = next.apps;
  }

  /** Number of credentials; 0 means the server is open (only allowed on loopback or when explicitly allowed). */
  get size(): number {
    return this.digests.size;
  }

  /** Checks an already-decoded user and password. */
  check(user: string, password: string): AuthResult {
    const found = this.digests.match(user, password);
    return found < 0 ? { ok: false } : { ok: true, index: found, app: this.apps[found] };
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
