import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import t from 'tap';
import { BIN, portOf, sendUdp, startCli, type Child } from './helpers.js';

/** Every listener on an ephemeral port, the admin listener included; one-hour windows. */
const ARGS = ['--statsd-udp', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--flush-interval', '1h', '--hostname', 'test-host'];

/** The admin address from the start-up log line. */
async function adminOf(c: Child): Promise<string> {
  await c.listening;
  const line = c.stderr().split('\n').find((l) => l.includes('metrics-distributor started.'))!;
  const admin = (JSON.parse(line) as { admin?: string }).admin;
  if (admin === undefined) throw new Error(`no admin address in ${line}`);
  return admin;
}

/** Runs a client subcommand; `stdout` grows as it prints. */
function client(args: string[]) {
  const proc = spawn(process.execPath, [BIN, ...args], { stdio: 'pipe' });
  const out = { stdout: '', stderr: '' };
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, out, exited };
}

async function until(what: string, probe: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// eslint-disable-next-line no-control-regex -- ANSI escapes are what is stripped
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');

t.test('the admin listener serves the running server: readiness, status, metrics', async (t) => {
  const c = startCli(ARGS);
  t.teardown(() => void c.proc.kill('SIGKILL'));
  const admin = await adminOf(c);
  const udp = portOf(await c.listening, 'udp');
  const ready = await fetch(`${admin}/readyz`);
  t.equal(ready.status, 200);
  t.same(await ready.json(), { ready: true, problems: [] });
  await sendUdp(udp, ['checkout.ok:1|c|#env:prod\ncheckout.ok:1|c|#env:dev']);
  let status: { listeners: string[]; sinks: { name: string; state: string }[]; components: { id: string; totals: { received: number } }[]; version: string };
  const deadline = Date.now() + 10_000;
  do {
    status = (await (await fetch(`${admin}/api/status`)).json()) as typeof status;
  } while (status.components.find((x) => x.id === 'statsd-udp')?.totals.received !== 2 && Date.now() < deadline && (await new Promise((r) => setTimeout(r, 100))) === undefined);
  t.same(status.listeners, [`udp://127.0.0.1:${udp}`]);
  t.match(status.sinks, [{ name: 'console', state: 'ok' }]);
  t.equal(status.components.find((x) => x.id === 'statsd-udp')?.totals.received, 2);
  t.match(status.version, /^\d+\.\d+\.\d+/);
  const metrics = await (await fetch(`${admin}/metrics`)).text();
  t.match(metrics, 'metrics_distributor_component_received_events_total{component_id="statsd-udp"} 2\n');
  const contexts = (await (await fetch(`${admin}/api/contexts?top=5`)).json()) as { report: { entries: { name: string; contexts: number }[] } };
  t.match(contexts.report.entries.find((e) => e.name === 'checkout.ok'), { contexts: 2 });
  // During shutdown /readyz says so, then the listener closes with the server.
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0);
});

t.test('tap prints the samples sent, filtered by name and type; top --once shows the numbers', async (t) => {
  const c = startCli(ARGS);
  t.teardown(() => void c.proc.kill('SIGKILL'));
  const admin = await adminOf(c);
  const udp = portOf(await c.listening, 'udp');
  const tap = client(['tap', '--admin', admin, '--match', 'shop.*', '--type', 'c,ms']);
  t.teardown(() => void tap.proc.kill('SIGKILL'));
  await until('tap connected', () => tap.out.stderr.includes('connected to'));
  await sendUdp(udp, ['shop.orders:3|c|#env:prod\nshop.latency:12|ms|@0.5\nshop.stock:7|g\nother.hits:1|c', 'shop.orders:4|c']);
  await until('three samples printed', () => tap.out.stdout.split('\n').filter((l) => l.includes('shop.')).length >= 3);
  const lines = tap.out.stdout.trim().split('\n');
  t.same(
    lines.map((l) => l.replace(/\s+/g, ' ')),
    ['statsd-udp shop.orders:3|c|#env:prod', 'statsd-udp shop.latency:12|ms|@0.5', 'statsd-udp shop.orders:4|c'],
    'matching names and types only, as StatsD lines',
  );
  tap.proc.kill('SIGINT');
  t.equal(await tap.exited, 0);

  // 40 more lines, so the totals are known: 45 received.
  await sendUdp(udp, [Array.from({ length: 40 }, (_, i) => `load.n:1|c|#id:${i}`).join('\n')]);
  await new Promise((r) => setTimeout(r, 1200));
  const top = client(['top', '--once', '--admin', admin]);
  t.equal(await top.exited, 0, top.out.stderr);
  const screen = stripAnsi(top.out.stdout);
  t.notMatch(top.out.stdout, '\x1b[2J', '--once does not clear the screen');
  t.match(screen, /^metrics-distributor \d+\.\d+\.\d+ {2}up \d+s {2}ready$/m);
  t.match(screen, /^statsd-udp +\S+ +\S+ +\S+ +\S+ +45 +0$/m, 'statsd-udp received 45 lines, dropped none');
  t.match(screen, /^console +ok +0\/16 /m);
  t.match(screen, /^load\.n +40 +\S+ +id \(40\)$/m, 'the name with most contexts and its tag key');
  t.match(screen, /^shop\.orders +2 +2 +env \(1\)$/m, 'two contexts: with and without a tag');
  c.proc.kill('SIGTERM');
  await c.exited;
});

t.test('tap and top say so when no server answers', async (t) => {
  const top = client(['top', '--once', '--admin', 'http://127.0.0.1:9']);
  t.equal(await top.exited, 1);
  t.match(top.out.stderr, /cannot reach http:\/\/127\.0\.0\.1:9/);
  const tap = client(['tap', '--admin', '127.0.0.1:9']);
  t.equal(await tap.exited, 1);
  t.match(tap.out.stderr, /cannot reach/);
});

function hold(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

t.test('a taken explicit admin address fails start-up; the default one only warns', async (t) => {
  const blocker = await hold(0);
  t.ok(blocker);
  const port = (blocker!.address() as { port: number }).port;
  t.teardown(() => void blocker!.close());
  const explicit = startCli(['--statsd-udp', '127.0.0.1:0', '--admin', `127.0.0.1:${port}`]);
  t.equal((await explicit.exited).code, 1);
  t.match(explicit.stderr(), /MD_ERR_ADMIN_BIND/);

  // 8126 is held by us, or already by something else (etsy statsd, another test): taken either way.
  const etsy = await hold(8126);
  t.teardown(() => void etsy?.close());
  const dflt = startCli(['--statsd-udp', '127.0.0.1:0', '--flush-interval', '1h']);
  t.teardown(() => void dflt.proc.kill('SIGKILL'));
  await dflt.listening;
  const startLine = dflt.stderr().split('\n').find((l) => l.includes('metrics-distributor started.'))!;
  if (etsy !== undefined) {
    t.match(dflt.stderr(), /Admin listener not started: .*pass --admin host:port or --admin off/);
    t.notMatch(startLine, '"admin"', 'no admin address in the start-up line');
  }
  dflt.proc.kill('SIGTERM');
  t.equal((await dflt.exited).code, 0);
});

t.test('--admin beyond loopback needs --admin-auth; --admin off serves nothing', async (t) => {
  const open = startCli(['--statsd-udp', '127.0.0.1:0', '--admin', '0.0.0.0:0']);
  t.equal((await open.exited).code, 2);
  t.match(open.stderr(), /--admin-auth/);
  const bad = startCli(['--statsd-udp', '127.0.0.1:0', '--admin-auth', 'nocolon']);
  t.equal((await bad.exited).code, 2);
  t.match(bad.stderr(), /credential #1 must be user:pass/);
  t.notMatch(bad.stderr(), 'nocolon', 'the credential is never echoed');
  const off = startCli(['--statsd-udp', '127.0.0.1:0', '--admin', 'off', '--flush-interval', '1h']);
  await off.listening;
  t.notMatch(off.stderr(), /Admin listener/);
  off.proc.kill('SIGTERM');
  t.equal((await off.exited).code, 0);
});
