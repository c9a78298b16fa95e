/**
 * The production bundle, as the Docker image holds it. deploy/bundle.sh builds it into a temp
 * directory, which then moves out of the repository so nothing can resolve through the workspace; the
 * server starts from there with the Dockerfile's own ENTRYPOINT and CMD (addresses on loopback port 0,
 * the data directory in a temp dir), receives a UDP counter, answers the HEALTHCHECK's one-liner, and
 * exits 0 on SIGTERM. No Docker engine is needed, so a broken image is caught here.
 */
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { portOf, repoFile, ROOT, startCommand, until } from './deploy-helpers.js';

const run = promisify(execFile);

/** Where the Dockerfile's build stage puts the bundle, and the final stage runs it from. */
const IMAGE_DIR = '/opt/metrics-distributor';
const IMAGE_DATA_DIR = '/var/lib/metrics-distributor';
/** Tooling that must never reach the image. */
const DEV_ONLY = ['tap', '@tapjs/', 'typescript', 'typescript-eslint', 'eslint', '@eslint/', 'turbo', 'fast-check', '@types/'];

/** The Dockerfile's instructions, with `\` continuations joined. */
function dockerfile(): { instr: string; args: string }[] {
  return repoFile('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\S+)\s+(.*)$/.exec(l);
      return { instr: m?.[1]?.toUpperCase() ?? l, args: m?.[2] ?? '' };
    });
}

/** The arguments of the last `instr` of the final stage. */
function finalStage(instr: string): string | undefined {
  const all = dockerfile();
  const from = all.map((x) => x.instr).lastIndexOf('FROM');
  return all.slice(from).filter((x) => x.instr === instr).at(-1)?.args;
}

const jsonArray = (s: string | undefined): string[] => {
  const v: unknown = JSON.parse(s ?? 'null');
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`not an exec-form array: ${s}`);
  return v;
};

/** Package directory names in the bundle's virtual store, e.g. `pino@10.4.0`, `@tapjs+core@4.0.0`. */
const storeNames = (dir: string): string[] => readdirSync(join(dir, 'node_modules', '.pnpm')).map((n) => n.replace(/^@([^+]+)\+/, '@$1/'));

const work = mkdtempSync(join(tmpdir(), 'md-bundle-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const built = join(work, 'built');
const app = join(work, 'elsewhere', 'app');

t.before(async () => {
  await run(join(ROOT, 'deploy', 'bundle.sh'), [built], { env: { ...process.env, BUNDLE_SKIP_BUILD: '1' }, maxBuffer: 16 << 20 });
  // A bundle that still pointed into packages/ (or anywhere by absolute path) would break only once moved.
  mkdirSync(join(work, 'elsewhere'));
  renameSync(built, app);
});

t.test('the bundle holds production dependencies only, none resolving into the repository', async (t) => {
  const names = storeNames(app);
  t.ok(names.some((n) => n.startsWith('pino@')), 'pino is there (a production dependency)');
  t.ok(names.some((n) => n.startsWith('@metrics-distributor/core@')), 'the workspace packages are copied in');
  for (const dev of DEV_ONLY) t.notOk(names.find((n) => n.startsWith(dev.endsWith('/') ? dev : `${dev}@`)), `no ${dev} in the bundle`);
  const top = join(app, 'node_modules', '@metrics-distributor');
  for (const pkg of readdirSync(top)) {
    const real = realpathSync(join(top, pkg));
    t.ok(real.startsWith(app), `${pkg} resolves inside the bundle`);
    t.ok(existsSync(join(real, 'dist', 'index.js')), `${pkg} has its built dist/`);
  }
  t.notOk(existsSync(join(app, 'src')), 'no TypeScript sources at the top');
  t.ok(lstatSync(join(app, 'bin', 'metrics-distributor.js')).isFile(), 'the bin shim is there');
  // The recvmmsg reader is compiled by the workspace build; a bundle without it would fall back to dgram.
  const udp = realpathSync(join(app, 'node_modules', '@metrics-distributor', 'frontend-statsd-udp'));
  t.ok(existsSync(join(udp, 'build', 'udp_batch.node')), 'the UDP batch reader addon is in the bundle');
});

t.test("the Dockerfile's lines refer to what the bundle has", async (t) => {
  const all = dockerfile();
  t.equal(all.filter((x) => x.instr === 'FROM').map((x) => x.args.split(/\s+/)[0]).join(' '), 'node:20-bookworm node:20-bookworm-slim', 'both stages on Node 20: the build stage with a C compiler for the UDP reader, the final one slim');
  t.ok(all.some((x) => x.instr === 'RUN' && x.args === `deploy/bundle.sh ${IMAGE_DIR}`), 'the build stage runs deploy/bundle.sh into the image directory');
  t.equal(finalStage('COPY'), `--from=build ${IMAGE_DIR} ${IMAGE_DIR}`, 'the final stage copies only the bundle');
  const user = finalStage('USER');
  t.ok(user !== undefined && user !== 'root' && user !== '0', `runs as a non-root user (${user})`);
  t.ok(all.some((x) => x.instr === 'RUN' && x.args.includes(`chown ${user}:${user} ${IMAGE_DATA_DIR}`)), 'that user owns the data directory');
  t.equal(finalStage('VOLUME'), IMAGE_DATA_DIR);
  t.equal(finalStage('STOPSIGNAL'), 'SIGTERM');
  t.equal(finalStage('EXPOSE'), '8125/udp 8125/tcp 8080 8126');
  const entry = jsonArray(finalStage('ENTRYPOINT'));
  t.equal(entry[0], 'node');
  t.ok(entry[1]?.startsWith(`${IMAGE_DIR}/`) && existsSync(join(app, entry[1].slice(IMAGE_DIR.length))), `ENTRYPOINT runs a file of the bundle (${entry[1]})`);
  t.equal(entry[entry.indexOf('--data-dir') + 1], IMAGE_DATA_DIR, 'the data directory is the volume');
  const health = finalStage('HEALTHCHECK') ?? '';
  const admin = [...entry, ...jsonArray(finalStage('CMD'))].filter((_, i, a) => a[i - 1] === '--admin').at(-1);
  t.match(health, `http://${admin}/healthz`, 'the health check asks the admin listener the image configures');
  t.ok(admin?.startsWith('127.0.0.1:'), 'the admin stays on loopback, where no --admin-auth is needed');
});

t.test('the bundle runs from outside the repository with the image command line', async (t) => {
  const data = mkdtempSync(join(tmpdir(), 'md-bundle-data-'));
  t.teardown(() => rmSync(data, { recursive: true, force: true }));
  const argv = [...jsonArray(finalStage('ENTRYPOINT')), ...jsonArray(finalStage('CMD'))].map((a) =>
    a === 'node' ? process.execPath : a.startsWith(IMAGE_DIR) ? app + a.slice(IMAGE_DIR.length) : a === IMAGE_DATA_DIR ? data : a.replace(/^(0\.0\.0\.0|127\.0\.0\.1):\d+$/, '127.0.0.1:0'),
  );
  // docker run's own arguments would come after CMD; these keep the test short.
  const server = startCommand([...argv, '--flush-interval', '500ms', '--hostname', 'bundle'], { cwd: app, env: { NODE_ENV: 'production' } });
  t.teardown(() => void server.proc.kill('SIGKILL'));
  const started = await server.started;
  t.notOk(started.listeners.some((l) => l.startsWith('http://')), "CMD's --http off wins over ENTRYPOINT's address: no drains without credentials");

  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.send('deploy.bundle:3|c|#via:udp', portOf(started.listeners, 'udp'), '127.0.0.1', () => r()));
  sock.close();
  const seen = await until(() => server.out.some((l) => l['metric'] === 'deploy.bundle'), 10_000);
  t.ok(seen, 'the UDP counter reaches the console sink');
  const line = server.out.find((l) => l['metric'] === 'deploy.bundle');
  t.same(line?.['tags'], ['via:udp']);

  // The HEALTHCHECK's own one-liner, pointed at the admin port this run got.
  const health = jsonArray(/CMD\s+(\[.*\])\s*$/.exec(finalStage('HEALTHCHECK') ?? '')?.[1]);
  const adminPort = new URL(started.admin ?? 'http://none').port;
  const probe = health.map((a, i) => (i === 0 ? process.execPath : a.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${adminPort}`)));
  const res = await run(probe[0]!, probe.slice(1)).then(() => 0, (err: { code?: number }) => err.code ?? -1);
  t.equal(res, 0, 'the health check passes');

  server.proc.kill('SIGTERM');
  t.same(await server.exited, { code: 0, signal: null }, 'SIGTERM exits 0');
});
