import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { portOf, sendUdp, startCli } from './helpers.js';

const COMMON = ['--statsd-udp', '127.0.0.1:0', '--flush-interval', '200ms', '--hostname', 'h1', '--self-metrics', 'false'];

/** The scrape URL from the start-up line's listeners. */
function scrapeUrl(listeners: string[]): string {
  const u = listeners.find((l) => l.startsWith('http://') && l.endsWith('/metrics'));
  if (u === undefined) throw new Error(`no /metrics listener in ${listeners.join(', ')}`);
  return u;
}

/** Scrapes until `pred` holds on the body (windows close every 200 ms). */
async function scrapeUntil(url: string, pred: (body: string) => boolean, timeoutMs = 10_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  let body = '';
  while (Date.now() < end) {
    body = await (await fetch(url)).text();
    if (pred(body)) return body;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`scrape never matched; last body:\n${body}`);
}

t.test('--sink prometheus: UDP counters, gauges and timers show up on /metrics as cumulative counters and histograms', async (t) => {
  const c = startCli([...COMMON, '--sink', 'prometheus', '--prometheus-listen', '127.0.0.1:0', '--prometheus-buckets', '0.01,0.1,1']);
  t.teardown(() => c.proc.kill('SIGKILL'));
  const listeners = await c.listening;
  const port = portOf(listeners, 'udp');
  const url = scrapeUrl(listeners);
  await sendUdp(port, ['jobs.done:3|c|#env:prod\njobs.done:2|c|#env:prod', 'temp:21.5|g']);
  await scrapeUntil(url, (b) => b.includes('jobs_done_total{host="h1",env="prod"} 5'));
  // A later window adds to the total: cumulative, not per window.
  await sendUdp(port, ['jobs.done:4|c|#env:prod', 'lat:10|ms\nlat:100|ms\nlat:1000|ms']);
  const body = await scrapeUntil(url, (b) => b.includes('jobs_done_total{host="h1",env="prod"} 9') && b.includes('lat_count'));
  t.match(body, /# TYPE jobs_done_total counter|# TYPE jobs_done counter/);
  t.match(body, /^temp\{host="h1"\} 21\.5$/m);
  // ms timers in seconds, each value exactly on a bucket bound.
  t.match(body, /^lat_bucket\{host="h1",le="0\.01"\} 1$/m);
  t.match(body, /^lat_bucket\{host="h1",le="0\.1"\} 2$/m);
  t.match(body, /^lat_bucket\{host="h1",le="1"\} 3$/m);
  t.match(body, /^lat_bucket\{host="h1",le="\+Inf"\} 3$/m);
  t.match(body, /^lat_sum\{host="h1"\} 1\.11$/m);
  t.match(body, /^lat_count\{host="h1"\} 3$/m);
  t.notMatch(body, /lat_max|lat_95percentile/, 'no aggregate gauges for contexts exposed as histograms');
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0);
});

t.test('--prometheus-timer-type summary: a timer window as quantiles in seconds, with cumulative sum and count', async (t) => {
  const c = startCli([...COMMON, '--sink', 'prometheus', '--prometheus-listen', '127.0.0.1:0', '--prometheus-timer-type', 'summary', '--prometheus-quantiles', '0.5,0.99']);
  t.teardown(() => c.proc.kill('SIGKILL'));
  const listeners = await c.listening;
  await sendUdp(portOf(listeners, 'udp'), ['lat:100|ms\nlat:100|ms\nlat:1000|ms']);
  const body = await scrapeUntil(scrapeUrl(listeners), (b) => b.includes('lat_count'));
  t.match(body, /^# TYPE lat summary$/m);
  // Rank roundHalfEven(0.5 × 2) = 1 is in the 100 ms bin, clamped to the exact minimum; p99 to the maximum.
  t.match(body, /^lat\{host="h1",quantile="0\.5"\} 0\.1$/m);
  t.match(body, /^lat\{host="h1",quantile="0\.99"\} 1$/m);
  t.match(body, /^lat_sum\{host="h1"\} 1\.2$/m);
  t.match(body, /^lat_count\{host="h1"\} 3$/m);
  t.notMatch(body, /lat_bucket|quantile="0\.9"/);
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0);
  const bad = startCli([...COMMON, '--sink', 'prometheus', '--prometheus-quantiles', '0.5,1']);
  t.equal((await bad.exited).code, 2);
  t.match(bad.stderr(), /--prometheus-quantiles.*between 0 and 1/);
  const badType = startCli([...COMMON, '--sink', 'prometheus', '--prometheus-timer-type', 'gauge']);
  t.equal((await badType.exited).code, 2);
  t.match(badType.stderr(), /--prometheus-timer-type.*histogram, summary/);
});

t.test('--sink prometheus,console runs both; a busy scrape port fails start-up', async (t) => {
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => busy.close());
  const taken = (busy.address() as AddressInfo).port;
  const c = startCli([...COMMON, '--sink', 'prometheus', '--prometheus-listen', `127.0.0.1:${taken}`]);
  const { code } = await c.exited;
  t.not(code, 0);
  t.match(c.stderr(), /MD_ERR_SINK_LISTEN/);

  const both = startCli([...COMMON, '--sink', 'prometheus,console', '--prometheus-listen', '127.0.0.1:0']);
  t.teardown(() => both.proc.kill('SIGKILL'));
  const listeners = await both.listening;
  await sendUdp(portOf(listeners, 'udp'), ['hits:2|c']);
  await both.waitFor((l) => l.metric === 'hits');
  await scrapeUntil(scrapeUrl(listeners), (b) => /^hits_total\{host="h1"\} 2$/m.test(b));
  t.pass('the same window reached the console and the scrape endpoint');
  both.proc.kill('SIGTERM');
  t.equal((await both.exited).code, 0);
});

t.test('--prometheus-listen off without remote write, bad buckets and bad headers are usage errors', async (t) => {
  const c = startCli([...COMMON, '--sink', 'prometheus', '--prometheus-listen', 'off']);
  t.equal((await c.exited).code, 2);
  t.match(c.stderr(), /--prometheus-listen: off needs --prometheus-remote-write-url/);
  const c3 = startCli([...COMMON, '--sink', 'prometheus', '--prometheus-remote-write-url', 'http://127.0.0.1:1/w', '--prometheus-remote-write-header', 'no-equals']);
  t.equal((await c3.exited).code, 2);
  t.match(c3.stderr(), /--prometheus-remote-write-header/);
  const c2 = startCli([...COMMON, '--sink', 'prometheus', '--prometheus-buckets', '1,0.5']);
  t.equal((await c2.exited).code, 2);
  t.match(c2.stderr(), /ascending/);
});

const NO_PROMETHEUS = spawnSync('sh', ['-c', 'command -v prometheus']).status === 0 ? false : 'prometheus not installed (Debian: apt-get install -y prometheus)';

t.test('--prometheus-remote-write-url: a real Prometheus receives the windows (scrape endpoint off)', { skip: NO_PROMETHEUS, timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'md-cli-prom-'));
  const free = createServer();
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', () => r()));
  const promPort = (free.address() as AddressInfo).port;
  await new Promise<void>((r) => free.close(() => r()));
  writeFileSync(join(dir, 'prometheus.yml'), 'global:\n  scrape_interval: 1m\n');
  const prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--web.enable-remote-write-receiver', '--log.level=warn'], { stdio: 'ignore' });
  t.teardown(() => {
    prom.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const base = `http://127.0.0.1:${promPort}`;
  const query = async (q: string): Promise<string[]> => {
    const body = (await (await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { data: { result: { value: [number, string] }[] } };
    return body.data.result.map((r) => r.value[1]);
  };
  const until = async (pred: () => Promise<boolean>) => {
    const end = Date.now() + 20_000;
    while (Date.now() < end) {
      if (await pred().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error('timed out');
  };
  await until(async () => (await fetch(`${base}/-/ready`)).ok);
  const c = startCli([
    ...COMMON,
    '--flush-interval', '1s',
    '--sink', 'prometheus',
    '--prometheus-listen', 'off',
    // Prometheus ignores credentials and unknown headers; the URL's userinfo must still not break the request.
    '--prometheus-remote-write-url', `http://user:pw@127.0.0.1:${promPort}/api/v1/write`,
    '--prometheus-remote-write-header', 'X-Scope-OrgID=t1',
  ]);
  t.teardown(() => c.proc.kill('SIGKILL'));
  const listeners = await c.listening;
  t.notOk(listeners.some((l) => l.endsWith('/metrics')), 'no scrape endpoint');
  const port = portOf(listeners, 'udp');
  await sendUdp(port, ['orders:2|c|#env:prod', 'lat:100|ms']);
  await until(async () => (await query('orders_total')).includes('2'));
  await sendUdp(port, ['orders:5|c|#env:prod']);
  await until(async () => (await query('orders_total')).includes('7'));
  t.same(await query('lat_bucket{le="0.1"}'), ['1'], 'the timer as a histogram in seconds');
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0);
});
