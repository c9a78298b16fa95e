/**
 * The systemd unit and the Heroku app. The unit goes through the real `systemd-analyze verify` (with a
 * deliberate typo first, to show the check can fail); the Procfile's web command runs through a shell as
 * Heroku's would, with PORT and the drain credential set, and takes a real logplex POST.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { portOf, repoFile, ROOT, startCommand } from './deploy-helpers.js';

const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const UNIT = 'metrics-distributor.service';
const FIXTURES = join(ROOT, 'packages', 'frontend-http', 'test', 'fixtures', 'logdrains');

/** `systemd-analyze verify` on `text` saved as the unit: its exit code and what it said about our unit. */
function verify(text: string): Promise<{ code: number; complaints: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'md-unit-'));
  const path = join(dir, UNIT);
  writeFileSync(path, text);
  return new Promise((resolve) => {
    execFile(SYSTEMD_ANALYZE, ['verify', '--man=no', '--generators=no', path], (err, stdout, stderr) => {
      rmSync(dir, { recursive: true, force: true });
      // Other units installed on the machine may draw warnings of their own; only ours count.
      const complaints = `${stdout}${stderr}`.split('\n').filter((l) => l.includes(UNIT));
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, complaints });
    });
  });
}

/** `Key=value` settings of the unit (last one wins, as in systemd). */
function settings(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(l.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) out.set(m[1], m[2]);
  }
  return out;
}

t.test('the systemd unit passes systemd-analyze verify', { skip: existsSync(SYSTEMD_ANALYZE) ? false : `${SYSTEMD_ANALYZE} is absent` }, async (t) => {
  let unit = repoFile(`deploy/${UNIT}`);
  // verify checks that ExecStart's binary exists; where node lives elsewhere, point it at this one.
  if (!existsSync('/usr/bin/node')) unit = unit.replace('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `);

  const typo = await verify(unit.replace('Restart=on-failure', 'Restart=on-failur'));
  t.ok(typo.complaints.some((l) => l.includes('on-failur')), 'verify reports a bad value in this unit (the check can fail)');

  const res = await verify(unit);
  t.equal(res.code, 0, 'verify exits 0');
  t.same(res.complaints, [], 'and says nothing about the unit');

  const s = settings(unit);
  for (const [k, v] of Object.entries({ Restart: 'on-failure', NoNewPrivileges: 'yes', ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', KillSignal: 'SIGTERM', ExecReload: '/bin/kill -HUP $MAINPID', EnvironmentFile: '-/etc/default/metrics-distributor' })) {
    t.equal(s.get(k), v, `${k}=${v}`);
  }
  const exec = s.get('ExecStart') ?? '';
  t.match(exec, `--data-dir /var/lib/${s.get('StateDirectory') ?? '?'}`, '--data-dir is the StateDirectory');
  // The server waits up to --shutdown-timeout (10 s by default) for sinks on SIGTERM.
  t.ok(Number(/^(\d+)s$/.exec(s.get('TimeoutStopSec') ?? '')?.[1]) > 10, 'TimeoutStopSec is above the shutdown timeout');
});

t.test("the Procfile's web command serves drains on $PORT with the app's credential", async (t) => {
  const web = /^web:\s*(.+)$/m.exec(repoFile('Procfile'))?.[1];
  t.ok(web, 'a web process');
  const appJson = JSON.parse(repoFile('app.json')) as { buildpacks: { url: string }[]; env: Record<string, { required?: boolean }> };
  t.same(appJson.buildpacks, [{ url: 'heroku/nodejs' }]);
  t.equal(appJson.env['DRAIN_AUTH']?.required, true, 'app.json requires the drain credential');
  t.equal(appJson.env['DD_API_KEY']?.required, false, 'and makes DD_API_KEY optional');
  t.match(web, /\$DRAIN_AUTH/, 'the Procfile uses that credential');
  const pkg = JSON.parse(repoFile('package.json')) as { packageManager?: string; scripts: Record<string, string> };
  t.match(pkg.packageManager, /^pnpm@/, 'the buildpack installs with pnpm (packageManager)');
  t.match(pkg.scripts['heroku-postbuild'], /build/, 'and builds the server (heroku-postbuild)');

  // Heroku runs the command through bash, in the app's root; PORT=0 lets the kernel pick a free port.
  const server = startCommand(['bash', '-c', `exec ${web}`], { cwd: ROOT, env: { PORT: '0', DRAIN_AUTH: 'drain:s3cret' } });
  t.teardown(() => void server.proc.kill('SIGKILL'));
  const started = await server.started;
  t.same(started.listeners.map((l) => l.split(':')[0]), ['http'], 'HTTP is the only listener (Heroku routes only HTTP)');
  t.equal(started.admin, undefined, 'no admin listener');
  const port = portOf(started.listeners, 'http');

  const body = readFileSync(join(FIXTURES, 'dd_router_1msg.logplex'));
  const post = (auth?: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path: '/logs', method: 'POST', headers: { 'content-type': 'application/logplex-1', 'logplex-msg-count': '1', 'logplex-frame-id': 'deploy-test', ...(auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {}) } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  t.equal(await post(), 401, 'no credential: refused');
  const status = await post('drain:s3cret');
  t.ok(status >= 200 && status < 300, `the app's credential: accepted (${status})`);

  // SIGTERM flushes the open window, so the router line shows without waiting out the 10 s window.
  server.proc.kill('SIGTERM');
  t.same(await server.exited, { code: 0, signal: null }, 'SIGTERM exits 0');
  t.ok(server.out.some((l) => l['metric'] === 'heroku.router.request'), 'the router line became heroku.router.request');
});
