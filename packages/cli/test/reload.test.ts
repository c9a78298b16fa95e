import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { BIN, portOf, startCli } from './helpers.js';

const FIXTURES = fileURLToPath(new URL('../../frontend-http/test/fixtures/logdrains/', import.meta.url));

/** A fresh self-signed certificate for localhost and 127.0.0.1, made by openssl. */
function makeCert(dir: string, name: string): { cert: string; key: string } {
  const cert = `${dir}/${name}.crt`;
  const key = `${dir}/${name}.key`;
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert, key };
}

const fingerprint = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;

interface Answer {
  status: number;
  fingerprint: string | undefined;
  reused: boolean;
}

/** One request over `agent` (HTTPS with the given CAs), with the certificate the server presented. */
function get(opts: { port: number; path: string; method?: string; agent?: Agent; ca?: Buffer[]; auth?: string; body?: Buffer; headers?: Record<string, string>; tls?: boolean }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}), ...(opts.auth !== undefined ? { authorization: `Basic ${Buffer.from(opts.auth).toString('base64')}` } : {}) };
    const common = { host: '127.0.0.1', port: opts.port, path: opts.path, method: opts.method ?? 'GET', headers };
    const req =
      opts.tls === false
        ? httpRequest(common)
        : httpsRequest({ ...common, servername: 'localhost', ...(opts.agent !== undefined ? { agent: opts.agent } : { ca: opts.ca, agent: false }) });
    req.on('response', (res) => {
      const sock = res.socket as TLSSocket;
      const fp = typeof sock.getPeerCertificate === 'function' ? sock.getPeerCertificate().fingerprint256 : undefined;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint: fp, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Waits until `pred(stderr)` holds. */
async function until(stderr: () => string, pred: (s: string) => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (pred(stderr())) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}; stderr:\n${stderr()}`);
}

const count = (s: string, needle: string) => s.split(needle).length - 1;

t.test('HTTPS drain: a logplex POST is counted; SIGHUP swaps the certificate, keep-alive connections keep working', async (t) => {
  const dir = t.testdir({});
  const a = makeCert(dir, 'a');
  const b = makeCert(dir, 'b');
  copyFileSync(a.cert, `${dir}/live.crt`);
  copyFileSync(a.key, `${dir}/live.key`);
  const ca = [readFileSync(a.cert), readFileSync(b.cert)];
  const c = startCli(['--statsd-udp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--http-auth', 'user:pass', '--http-tls-cert', `${dir}/live.crt`, '--http-tls-key', `${dir}/live.key`, '--admin', 'off', '--flush-interval', '1h', '--self-metrics', 'false']);
  t.teardown(() => c.proc.kill('SIGKILL'));
  const listeners = await c.listening;
  const port = portOf(listeners, 'https');

  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1, ca });
  t.teardown(() => keepAlive.destroy());
  const first = await get({ port, path: '/healthz', agent: keepAlive });
  t.equal(first.status, 200);
  t.equal(first.fingerprint, fingerprint(a.cert), 'the first certificate is served');
  const plain = await get({ port, path: '/healthz', tls: false }).catch((e: Error) => e);
  t.ok(plain instanceof Error || plain.status === 400, 'plain HTTP is not answered as HTTP');

  const body = readFileSync(`${FIXTURES}mixed_batch_7msg_correct_counts.logplex`);
  const headers = { 'content-type': 'application/logplex-1', 'logplex-msg-count': '7', 'logplex-frame-id': 'AA2A9C7B1E5D4A60B8C7D6E5F4A3B2C1', 'logplex-drain-token': 'd.fc6b856b-3332-4546-93de-7d0ee272c3bd' };
  t.equal((await get({ port, path: '/logs?app=shop', method: 'POST', ca, body, headers })).status, 401, 'credentials still needed over TLS');
  t.equal((await get({ port, path: '/logs?app=shop', method: 'POST', ca, body, headers, auth: 'user:pass' })).status, 200);

  copyFileSync(b.cert, `${dir}/live.crt`);
  copyFileSync(b.key, `${dir}/live.key`);
  c.proc.kill('SIGHUP');
  await until(() => c.stderr(), (s) => s.includes('Config reloaded.'), 'the reload line');

  const fresh = await get({ port, path: '/healthz', ca });
  t.equal(fresh.fingerprint, fingerprint(b.cert), 'a new connection gets the new certificate');
  const again = await get({ port, path: '/healthz', agent: keepAlive });
  t.equal(again.status, 200, 'the kept-alive connection still works');
  t.ok(again.reused, 'on the same socket as before the reload');
  t.equal(again.fingerprint, fingerprint(a.cert), 'which keeps the old certificate');

  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0);
  const req = c.lines.find((l) => l.metric === 'heroku.router.request');
  t.equal(req?.value, 1 / 3600, 'the drain body sent over HTTPS was aggregated');
});

t.test('a certificate and key that do not belong together: exit 2 naming the key file', async (t) => {
  const dir = t.testdir({});
  const a = makeCert(dir, 'a');
  const b = makeCert(dir, 'b');
  const c = startCli(['--statsd-udp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--http-tls-cert', a.cert, '--http-tls-key', b.key, '--admin', 'off']);
  t.equal((await c.exited).code, 2);
  t.match(c.stderr(), `TLS key ${b.key} does not belong to the certificate ${a.cert}`);
  const missing = startCli(['--statsd-udp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--http-tls-cert', `${dir}/nope.crt`, '--http-tls-key', b.key, '--admin', 'off']);
  t.equal((await missing.exited).code, 2);
  t.match(missing.stderr(), `cannot read TLS certificate ${dir}/nope.crt`);
});

t.test('the admin listener speaks HTTPS with its own pair', async (t) => {
  const dir = t.testdir({});
  const a = makeCert(dir, 'admin');
  const c = startCli(['--statsd-udp', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--admin-tls-cert', a.cert, '--admin-tls-key', a.key, '--flush-interval', '1h']);
  t.teardown(() => c.proc.kill('SIGKILL'));
  await c.listening;
  const line = c.stderr().split('\n').find((l) => l.includes('metrics-distributor started.'))!;
  const admin = (JSON.parse(line) as { admin: string }).admin;
  t.match(admin, /^https:\/\/127\.0\.0\.1:\d+$/);
  const answer = await get({ port: Number(admin.slice(admin.lastIndexOf(':') + 1)), path: '/healthz', ca: [readFileSync(a.cert)] });
  t.equal(answer.status, 200);
  t.equal(answer.fingerprint, fingerprint(a.cert));
});

t.test('SIGHUP re-reads --config: new credentials apply, a bad file is refused and the running config stays', async (t) => {
  const dir = t.testdir({});
  const cfg = `${dir}/md.yaml`;
  writeFileSync(cfg, 'httpAuth: [old:secret]\nlogLevel: info\n');
  const c = startCli(['--config', cfg, '--statsd-udp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--admin', 'off', '--flush-interval', '1h', '--self-metrics', 'false']);
  t.teardown(() => c.proc.kill('SIGKILL'));
  const port = portOf(await c.listening, 'http');
  const post = (auth: string) => get({ port, path: '/statsd', method: 'POST', auth, body: Buffer.from('reload.hits:1|c\nreload.blocked:1|c\n'), tls: false }).then((r) => r.status);
  t.equal(await post('old:secret'), 200, 'the first credential works');
  t.equal(await post('new:secret'), 401);

  t.notOk(c.stderr().includes('"level":20'), 'nothing at debug yet');
  writeFileSync(cfg, 'httpAuth: [new:secret]\nlogLevel: debug\ntags: [env:prod]\nmetric_filterlist: [reload.blocked]\nmaxContexts: 5000\n');
  c.proc.kill('SIGHUP');
  await until(() => c.stderr(), (s) => count(s, 'Config reloaded.') === 1, 'the reload line');
  t.equal(await post('old:secret'), 401, 'the old credential is refused after the reload');
  t.equal(await post('new:secret'), 200, 'the new credential is accepted');
  t.match(c.stderr(), /"level":20,[^\n]*"component":"http"/, 'the http component logs at the new level, debug');
  const restartLine = c.stderr().split('\n').find((l) => l.includes('need a restart'));
  t.ok(restartLine !== undefined, 'keys needing a restart are logged');
  t.same((JSON.parse(restartLine!) as { keys: string[] }).keys, ['maxContexts'], 'listed under keys, and only those: the filter and the global tags apply');
  const statsd = (body: string) => get({ port, path: '/statsd', method: 'POST', auth: 'new:secret', body: Buffer.from(body), tls: false }).then((r) => r.status);
  // Both names were seen before the reload, so only a table that forgot their byte forms applies the new rules.
  t.equal(await statsd('reload.hits:1|c\nreload.blocked:1|c\n'), 200);

  writeFileSync(cfg, 'httpAuth: [newer:secret]\nnoSuchKey: 1\n');
  c.proc.kill('SIGHUP');
  await until(() => c.stderr(), (s) => s.includes('Config reload refused'), 'the refusal line');
  t.match(c.stderr(), /unknown key 'noSuchKey'/);
  t.equal(c.proc.exitCode, null, 'still running');
  t.equal(await post('new:secret'), 200, 'the running credential stays');
  t.equal(await post('newer:secret'), 401);

  writeFileSync(cfg, 'httpAuth: [newer:secret\n');
  c.proc.kill('SIGHUP');
  await until(() => c.stderr(), (s) => count(s, 'Config reload refused') === 2, 'the second refusal line');
  t.match(c.stderr(), /not valid YAML/);
  t.notOk(c.stderr().includes('secret'), 'no credential reaches the logs');

  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0);
  const hits = c.lines.filter((l) => l.metric === 'reload.hits').map((l) => `${String(l.tags)} ${Math.round((l.value ?? NaN) * 3600)}`);
  t.same(hits.sort(), [' 1', 'env:prod 3'], 'hits before the reload untagged, after it with the new global tag (three posts)');
  t.same(c.lines.filter((l) => l.metric === 'reload.blocked').map((l) => `${String(l.tags)} ${Math.round((l.value ?? NaN) * 3600)}`), [' 1'], 'the new filter blocks a name seen before the reload: only the window part from before it remains');
});

t.test('check-config prints the effective settings with secrets masked; exit 2 names the bad key', async (t) => {
  const dir = t.testdir({ 'good.yaml': 'httpAuth: ["drain:hunter2"]\notlpHeaders: { api-key: abc123 }\nflushIntervalMs: 5000\n', 'bad.yaml': 'flushIntervalMs: 5000\nflushIntervl: 1\n' });
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const p = spawn(process.execPath, [BIN, 'check-config', ...args], { env: { ...process.env, ...env } });
      let out = '';
      let err = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      p.on('exit', (code) => resolve({ code, out, err }));
    });
  const good = await run([`${dir}/good.yaml`], { DD_API_KEY: 'ddkey-from-env' });
  t.equal(good.code, 0);
  const settings = JSON.parse(good.out) as Record<string, unknown>;
  t.equal(settings['flushIntervalMs'], 5000, 'file over default');
  t.same(settings['httpAuth'], [{ user: '***', password: '***' }]);
  t.same(settings['otlpHeaders'], { 'api-key': '***' });
  t.equal(settings['datadogApiKey'], '***', 'the environment is applied, masked');
  t.same(settings['sinks'], ['datadog']);
  t.notOk(/hunter2|abc123|ddkey-from-env/.test(good.out), 'no secret printed');
  const bad = await run([`${dir}/bad.yaml`]);
  t.equal(bad.code, 2);
  t.match(bad.err, /unknown key 'flushIntervl'/);
  t.equal((await run([`${dir}/missing.yaml`])).code, 2);
});

t.test('PORT: the drain listener binds 0.0.0.0:$PORT, which still needs credentials (MD_HTTP_AUTH)', async (t) => {
  const spawnWith = (env: NodeJS.ProcessEnv) => {
    const p = spawn(process.execPath, [BIN, '--statsd-udp', '127.0.0.1:0', '--statsd-tcp', 'off', '--admin', 'off', '--flush-interval', '1h'], { env: { ...process.env, ...env } });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    t.teardown(() => p.kill('SIGKILL'));
    return { p, err: () => err, exited: new Promise<number | null>((r) => p.on('exit', (code) => r(code))) };
  };
  const open = spawnWith({ PORT: '0' });
  t.equal(await open.exited, 2, 'no credentials: refused');
  t.match(open.err(), /refusing to listen on 0\.0\.0\.0/);
  const ok = spawnWith({ PORT: '0', MD_HTTP_AUTH: 'heroku:drainpass' });
  await until(ok.err, (s) => s.includes('metrics-distributor started.'), 'start-up');
  const line = ok.err().split('\n').find((l) => l.includes('metrics-distributor started.'))!;
  const listeners = (JSON.parse(line) as { listeners: string[] }).listeners;
  t.ok(listeners.some((l) => /^http:\/\/0\.0\.0\.0:\d+$/.test(l)), 'listens on every interface');
  const port = portOf(listeners, 'http');
  t.equal((await get({ port, path: '/statsd', method: 'POST', body: Buffer.from('a:1|c\n'), tls: false })).status, 401);
  t.equal((await get({ port, path: '/statsd', method: 'POST', auth: 'heroku:drainpass', body: Buffer.from('a:1|c\n'), tls: false })).status, 200);
});
