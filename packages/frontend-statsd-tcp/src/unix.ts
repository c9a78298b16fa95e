/**
 * The file side of a Unix stream socket: a stale file left by a crashed process is removed only when
 * nothing listens on it, and the socket gets its file mode right after binding.
 */
import { chmod, lstat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { MdError, type Logger } from '@metrics-distributor/core';

/** The `code` of a system error, if it has one. */
export function errCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Linux abstract socket names (leading NUL) have no file: nothing to stat, remove or chmod. */
function isAbstract(path: string): boolean {
  return path.startsWith('\0');
}

/**
 * A socket file left by a crashed process blocks `listen` with EADDRINUSE. Remove it only when a connect
 * attempt is refused: deleting a live server's path would silently steal its future clients.
 */
export async function removeStaleSocket(path: string, logger: Logger): Promise<void> {
  if (isAbstract(path)) return;
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if (errCode(err) === 'ENOENT') return;
    throw new MdError('MD_ERR_FRONTEND_BIND', `statsd-tcp cannot inspect ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (!isSocket) throw new MdError('MD_ERR_FRONTEND_BIND', `statsd-tcp will not replace ${path}: it exists and is not a socket`);
  const probe = await probeUnix(path);
  if (probe === 'live') {
    const cause = Object.assign(new Error(`connect ${path} succeeded`), { code: 'EADDRINUSE' });
    throw new MdError('MD_ERR_FRONTEND_BIND', `statsd-tcp will not replace ${path}: another process is listening on it`, { cause });
  }
  if (probe !== 'refused') {
    throw new MdError('MD_ERR_FRONTEND_BIND', `statsd-tcp will not replace ${path}: cannot tell whether another process listens on it (${probe.message})`, { cause: probe });
  }
  try {
    await unlink(path);
  } catch (err) {
    if (errCode(err) !== 'ENOENT') throw new MdError('MD_ERR_FRONTEND_BIND', `statsd-tcp cannot remove stale socket ${path}: ${(err as Error).message}`, { cause: err });
  }
  logger.info({ path }, 'Removed a stale StatsD Unix socket file (nothing was listening on it).');
}

/** Sets the mode of a bound socket file (not of an abstract name); rejects with `MD_ERR_FRONTEND_BIND`. */
export async function setSocketMode(path: string, mode: number): Promise<void> {
  if (isAbstract(path)) return;
  try {
    await chmod(path, mode);
  } catch (err) {
    throw new MdError('MD_ERR_FRONTEND_BIND', `statsd-tcp could not set mode ${mode.toString(8)} on ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** `'refused'` when nothing listens on `path` (a stale file), `'live'` when something accepted, else the error. */
function probeUnix(path: string): Promise<'refused' | 'live' | Error> {
  return new Promise((resolve) => {
    const sock = connect({ path });
    sock.once('connect', () => {
      sock.destroy();
      resolve('live');
    });
    sock.once('error', (err) => {
      sock.destroy();
      const code = errCode(err);
      resolve(code === 'ECONNREFUSED' || code === 'ENOENT' ? 'refused' : err);
    });
  });
}
