// `--sink graphite` end to end: StatsD over UDP into the built CLI, lines out to a stand-in carbon
// (a TCP server recording lines; the real carbon-cache is tested in packages/sink-graphite).
import { createServer, type Server } from 'node:net';
import t from 'tap';
import { portOf, sendUdp, startCli } from './helpers.js';

async function standIn(): Promise<{ port: number; lines: string[]; close: () => Promise<void> }> {
  const lines: string[] = [];
  const server: Server = createServer((sock) => {
    let rest = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      const parts = (rest + d).split('\n');
      rest = parts.pop()!;
      lines.push(...parts);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, lines, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const COMMON = ['--statsd-udp', '127.0.0.1:0', '--flush-interval', '1h', '--hostname', 'test-host', '--self-metrics', 'false'];

function find(lines: string[], name: string): { value: number; ts: number } | undefined {
  const l = lines.find((x) => x.startsWith(`${name} `));
  if (l === undefined) return undefined;
  const [, v, ts] = l.split(' ');
  return { value: Number(v), ts: Number(ts) };
}

t.test('--sink graphite: UDP counters reach carbon under etsy legacy names at the window start', async (t) => {
  const carbon = await standIn();
  t.teardown(() => carbon.close());
  const c = startCli(['--sink', 'graphite', '--graphite-address', `127.0.0.1:${carbon.port}`, ...COMMON]);
  const port = portOf(await c.listening, 'udp');
  const before = Math.floor(Date.now() / 1000);
  await sendUdp(port, ['gh.hits:1|c\ngh.hits:2|c|@0.5', 'gh.hits:3|c', 'gh.temp:21.5|g', 'gh.req:2|c|#env:prod']);
  await new Promise((r) => setTimeout(r, 300));
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0, 'exit code 0 after SIGTERM');
  const count = find(carbon.lines, 'stats_counts.gh.hits');
  t.same(count?.value, 8, '1 + 2/0.5 + 3 increments');
  t.same(find(carbon.lines, 'stats.gh.hits')?.value, 8 / 3600, 'per-second rate of a 1 h window');
  t.same(find(carbon.lines, 'stats.gauges.gh.temp')?.value, 21.5);
  t.same(find(carbon.lines, 'stats_counts.gh.req;env=prod')?.value, 2, 'tags as Graphite 1.1 tags');
  const ts = count!.ts;
  t.ok(ts % 3600 === 0 && ts <= before && ts > before - 3600, 'timestamp is the window start in seconds');
  t.equal(carbon.lines.length, 5, 'nothing else sent: two counters (rate and count each) and a gauge');
});

t.test('--graphite-legacy-namespace false with prefixes, suffix and folded tags', async (t) => {
  const carbon = await standIn();
  t.teardown(() => carbon.close());
  const c = startCli([
    '--sink', 'graphite', '--graphite-address', `127.0.0.1:${carbon.port}`, '--graphite-legacy-namespace', 'false',
    '--graphite-global-prefix', 'app', '--graphite-global-suffix', 'web1', '--graphite-tags', 'name', ...COMMON,
  ]);
  const port = portOf(await c.listening, 'udp');
  await sendUdp(port, ['gh.hits:4|c|#env:prod']);
  await new Promise((r) => setTimeout(r, 300));
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0);
  t.same(carbon.lines.map((l) => l.split(' ').slice(0, 2).join(' ')).sort(), ['app.counters.gh.hits.count.web1.env_prod 4', `app.counters.gh.hits.rate.web1.env_prod ${4 / 3600}`]);
});

t.test('a bad --graphite-address is a start-up error', async (t) => {
  const c = startCli(['--sink', 'graphite', '--graphite-address', 'nohost', ...COMMON]);
  const { code } = await c.exited;
  t.not(code, 0);
  t.match(c.stderr(), /graphite-address/);
});
