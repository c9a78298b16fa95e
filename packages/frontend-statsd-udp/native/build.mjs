// Compiles the batch reader (native/udp_batch.c) into build/udp_batch.node with the machine's C
// compiler ($CC, else cc) against the headers of the Node running this script. It never fails the
// package's build: where it cannot compile (no compiler, no headers, not Linux) it writes why into
// build/udp_batch.json, and the front-end reads with node:dgram and logs that reason once.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = dirname(dirname(fileURLToPath(import.meta.url)));
const source = join(pkg, 'native', 'udp_batch.c');
const outDir = join(pkg, 'build');
const addon = join(outDir, 'udp_batch.node');
const statusFile = join(outDir, 'udp_batch.json');

function finish(status) {
  writeFileSync(statusFile, `${JSON.stringify({ ...status, node: process.version, builtAt: new Date().toISOString() })}\n`);
  const line = status.built ? `built ${addon}` : `not built (${status.why}); the front-end will read with node:dgram`;
  process.stderr.write(`frontend-statsd-udp batch reader: ${line}\n`);
}

mkdirSync(outDir, { recursive: true });
// A stale addon must not outlive a failed rebuild of a changed source.
rmSync(addon, { force: true });

if (process.platform !== 'linux') {
  finish({ built: false, why: `recvmmsg(2) is Linux-only, this is ${process.platform}` });
} else {
  // Node's own headers sit next to its binary: <prefix>/bin/node and <prefix>/include/node.
  const include = join(dirname(dirname(realpathSync(process.execPath))), 'include', 'node');
  if (!existsSync(join(include, 'node_api.h')) || !existsSync(join(include, 'uv.h'))) {
    finish({ built: false, why: `no node_api.h and uv.h in ${include}` });
  } else {
    const cc = process.env.CC || 'cc';
    const tmp = `${addon}.${process.pid}.tmp`;
    const args = ['-O2', '-std=gnu11', '-Wall', '-Wextra', '-fPIC', '-shared', '-fvisibility=hidden', '-I', include, '-o', tmp, source];
    const r = spawnSync(cc, args, { encoding: 'utf8' });
    if (r.error !== undefined || r.status !== 0) {
      rmSync(tmp, { force: true });
      const detail = r.error !== undefined ? r.error.message : (r.stderr || `exit status ${r.status}`).trim().split('\n').slice(0, 5).join(' | ');
      finish({ built: false, why: `${cc} failed: ${detail}` });
    } else {
      renameSync(tmp, addon);
      if (r.stderr.trim() !== '') process.stderr.write(r.stderr);
      finish({ built: true, cc });
    }
  }
}
