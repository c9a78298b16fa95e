import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { portOf, sendUdp, startCli, type OutLine } from './helpers.js';

const series = (lines: OutLine[], metric: string) => lines.filter((l) => l.metric === metric && l.kind === undefined);

t.test('a bad flag exits 2 and names the option', async (t) => {
  const c = startCli(['--flush-interval', '10']);
  const { code } = await c.exited;
  t.equal(code, 2);
  t.match(c.stderr(), /--flush-interval/);
  const c2 = startCli(['--no-such-flag']);
  t.equal((await c2.exited).code, 2);
  t.match(c2.stderr(), /no-such-flag/);
  const c3 = startCli(['--sink', 'nope', '--statsd-udp', '127.0.0.1:0']);
  t.equal((await c3.exited).code, 2);
  t.match(c3.stderr(), /unknown sink 'nope'/);
});

t.test('an unknown config key exits 2 and names the key', async (t) => {
  const dir = t.testdir({});
  const yml = join(dir, 'c.yaml');
  writeFileSync(yml, 'flushIntervalMs: 5s\nflushInterval: 10s\n');
  const c = startCli(['--config', yml]);
  t.equal((await c.exited).code, 2);
  t.match(c.stderr(), /unknown key 'flushInterval'/);
  const json = join(dir, 'c.json');
  writeFileSync(json, JSON.stringify({ maxContexts: 'lots' }));
  const c2 = startCli(['--config', json]);
  t.equal((await c2.exited).code, 2);
  t.match(c2.stderr(), /maxContexts/);
});

t.test('end to end over UDP: exact aggregates; SIGTERM flushes the partial window and exits 0', async (t) => {
  const dir = t.testdir({});
  const cfg = join(dir, 'c.yaml');
  // A one-hour window: the only flush in this test is the one SIGTERM forces.
  writeFileSync(cfg, 'flushIntervalMs: 1h\nhostname: test-host\nstatsdUdp: 127.0.0.1:0\n');
  const c = startCli(['--config', cfg, '--histogram-percentiles', '0.5,0.95']);
  const port = portOf(await c.listening, 'udp');
  const lat = Array.from({ length: 10 }, (_, i) => `lat:${i + 1}|ms|#route:/a`).join('\n');
  await sendUdp(port, [
    'hits:1|c\nhits:2|c|@0.5\ngarbage line\nhits:1|c|#env:dev',
    lat,
    'temp:20|g\ntemp:21.5|g',
    'users:alice|s\nusers:bob|s\nusers:alice|s',
    Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0x80]),
    'dist:1:2:3|d',
    '_e{5,4}:title|text|#a',
    '_sc|db|1|m:slow',
  ]);
  // Wait until the server has seen every datagram (it prints nothing until a flush, so poll by probing).
  await new Promise((r) => setTimeout(r, 300));
  c.proc.kill('SIGTERM');
  const { code } = await c.exited;
  t.equal(code, 0, 'exit code 0 after SIGTERM');
  const lines = c.lines;
  const hits = series(lines, 'hits').find((l) => l.tags!.length === 0)!;
  t.ok(hits, 'hits printed');
  t.equal(hits.type, 'rate');
  t.equal(hits.interval, 3600);
  t.equal(hits.host, 'test-host');
  t.equal(hits.value, 5 / 3600);
  t.same(series(lines, 'hits').find((l) => l.tags!.length === 1)!.tags, ['env:dev']);
  t.equal(series(lines, 'lat.max')[0]!.value, 10);
  t.equal(series(lines, 'lat.median')[0]!.value, 5);
  t.equal(series(lines, 'lat.avg')[0]!.value, 5.5);
  t.equal(series(lines, 'lat.50percentile')[0]!.value, 5);
  t.equal(series(lines, 'lat.95percentile')[0]!.value, 10);
  t.same(series(lines, 'lat.max')[0]!.tags, ['route:/a']);
  t.equal(series(lines, 'temp')[0]!.value, 21.5);
  t.equal(series(lines, 'users')[0]!.value, 2);
  const dist = lines.find((l) => l.metric === 'dist')!;
  t.equal(dist.type, 'distribution');
  t.equal(dist['count'], 3);
  t.equal(dist['max'], 3);
  t.equal(lines.filter((l) => l.kind === 'event').length, 1);
  t.equal(lines.find((l) => l.kind === 'service_check')!['message'], 'slow');
  const bad = lines.find((l) => l.metric === 'metrics_distributor.bad' && l.tags!.includes('component:statsd-udp'));
  t.ok(bad, 'bad lines are counted in self-metrics');
  t.equal(bad!.value! * 3600, 3, 'garbage line plus the two binary lines');
  t.match(c.stderr(), /Shutdown complete/);
});

t.test('windows flush on the wall-clock boundary while the server runs', async (t) => {
  const c = startCli(['--statsd-udp', '127.0.0.1:0', '--flush-interval', '500ms', '--self-metrics', 'false']);
  const port = portOf(await c.listening, 'udp');
  await sendUdp(port, ['tick:1|c']);
  const line = await c.waitFor((l) => l.metric === 'tick' && (l.value ?? 0) > 0);
  t.equal(line.value, 2, 'one increment in a 0.5 s window is 2/s');
  t.equal(line.interval, 0.5);
  t.equal((line.timestamp! * 1000) % 500, 0);
  t.notOk(c.lines.some((l) => l.metric?.startsWith('metrics_distributor.') === true), 'no self-metrics with --self-metrics false');
  c.proc.kill('SIGINT');
  t.equal((await c.exited).code, 0);
});

t.test('process self-metrics: loop delay in ms, memory in bytes, per window', async (t) => {
  const c = startCli(['--statsd-udp', '127.0.0.1:0', '--flush-interval', '300ms']);
  await c.listening;
  const proc = (metric: string) => c.waitFor((l) => l.metric === `metrics_distributor.${metric}` && l.tags!.includes('component:process'));
  const rss = await proc('rss_bytes');
  const heap = await proc('heap_used_bytes');
  const max = await proc('event_loop_delay_max_ms');
  const p99 = await proc('event_loop_delay_p99_ms');
  t.equal(rss.type, 'gauge');
  t.ok(rss.value! > 10 * 2 ** 20 && rss.value! < 2 * 2 ** 30, `rss_bytes ${rss.value} is a process size in bytes`);
  t.ok(heap.value! > 2 ** 20 && heap.value! < rss.value!, `heap_used_bytes ${heap.value} is below the RSS`);
  t.ok(max.value! >= 0 && max.value! < 1000, `event_loop_delay_max_ms ${max.value} is in ms (an idle loop reads a few at most)`);
  t.ok(p99.value! >= 0 && p99.value! <= max.value!, 'p99 is at most the max');
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0);
});

t.test('--statsd-udp-reader batch: counts every line end to end; the start-up log names the reader', async (t) => {
  const c = startCli(['--statsd-udp', '127.0.0.1:0', '--statsd-udp-reader', 'batch', '--flush-interval', '1h', '--counters-as', 'count', '--self-metrics', 'false']);
  const port = portOf(await c.listening, 'udp');
  t.ok(c.stderr().split('\n').some((l) => l.includes('StatsD UDP listening.') && l.includes('"reader":"batch"')), 'the listening line says batch');
  const packets = Array.from({ length: 500 }, (_, i) => Array.from({ length: 10 }, (_, j) => `reader.n${(i + j) % 25}:${j + 1}|c`).join('\n'));
  await sendUdp(port, packets);
  await new Promise((r) => setTimeout(r, 200));
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0);
  const totals = new Map<string, number>();
  for (const l of c.lines) if (l.metric?.startsWith('reader.')) totals.set(l.metric, (totals.get(l.metric) ?? 0) + l.value!);
  t.equal(totals.size, 25);
  t.equal([...totals.values()].reduce((a, b) => a + b, 0), 500 * 55, 'every line of every datagram, exactly once');
});

t.test('--statsd-udp-reader dgram runs node:dgram; a bad value exits 2 naming the option', async (t) => {
  const c = startCli(['--statsd-udp', '127.0.0.1:0', '--statsd-udp-reader', 'dgram', '--flush-interval', '1h']);
  await c.listening;
  t.ok(c.stderr().split('\n').some((l) => l.includes('StatsD UDP listening.') && l.includes('"reader":"dgram"')));
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0);
  const bad = startCli(['--statsd-udp-reader', 'fast']);
  t.equal((await bad.exited).code, 2);
  t.match(bad.stderr(), /--statsd-udp-reader: expected one of auto, batch, dgram/);
});
