/** What `tap` and `top` share: the admin listener's URL and credentials. */

/** The admin address `tap` and `top` use unless told otherwise: the server's default `--admin`. */
export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:8126';

/** Options every admin client command takes. */
export interface AdminClientOptions {
  /** Base URL of the admin listener (`http://host:port`, a bare `host:port` is accepted). */
  admin?: string;
  /** `user:pass` when the listener has credentials. */
  adminAuth?: string;
}

/** `path` on the admin listener at `base` (default {@link DEFAULT_ADMIN_URL}). */
export function adminUrl(base: string | undefined, path: string): URL {
  const b = base ?? DEFAULT_ADMIN_URL;
  return new URL(path, /^https?:\/\//.test(b) ? b : `http://${b}`);
}

/** Request headers: Basic credentials when given. */
export function adminRequestHeaders(opts: AdminClientOptions): Record<string, string> {
  return opts.adminAuth === undefined ? {} : { authorization: `Basic ${Buffer.from(opts.adminAuth).toString('base64')}` };
}
