import t from 'tap';
import { createSocket } from 'node:dgram';
import { portOf, sendUdp, startCli, type OutLine } from './helpers.js';

const total = (lines: OutLine[], metric: string) =>
  lines.filter((l) => l.metric === metric && l.kind === undefined).reduce((sum, l) => sum + l.value! * l.interval!, 0);

t.test('--workers 2: the same totals as one worker, no double counting, nothing lost at SIGTERM', async (t) => {
  const c = startCli(['--statsd-udp', '127.0.0.1:0', '--workers', '2', '--flush-interval', '500ms', '--histogram-aggregates', 'max,min,count', '--histogram-percentiles', '0.5']);
  const listeners = await c.listening;
  const port = portOf(listeners, 'udp');
  t.match(c.stderr(), /"workers":2/);
  // Many datagrams so both workers get some; counters, sets and histograms across windows.
  const packets: string[] = [];
  for (let i = 0; i < 400; i++) packets.push(`w.count:1|c\nw.count:2|c|@0.5\nw.set:u${i % 37}|s\nw.hist:${i % 100}|h`);
  await sendUdp(port, packets.slice(0, 200));
  await new Promise((r) => setTimeout(r, 700)); // at least one boundary passes mid-stream
  await sendUdp(port, packets.slice(200));
  await new Promise((r) => setTimeout(r, 200));
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0);
  const lines = c.lines;
  t.equal(Math.round(total(lines, 'w.count')), 400 * 5, 'every increment counted exactly once');
  t.equal(Math.round(total(lines, 'w.hist.count')), 400, 'histogram samples counted once');
  t.equal(Math.max(...lines.filter((l) => l.metric === 'w.hist.max').map((l) => l.value!)), 99);
  t.equal(Math.min(...lines.filter((l) => l.metric === 'w.hist.min').map((l) => l.value!)), 0);
  const setWindows = lines.filter((l) => l.metric === 'w.set');
  t.ok(setWindows.every((l) => l.value! <= 37), 'set cardinality merged, never summed past the distinct members');
  const packetsSelf = lines.filter((l) => l.metric === 'metrics_distributor.packets' && l.tags!.includes('component:statsd-udp'));
  t.equal(Math.round(packetsSelf.reduce((s, l) => s + l.value! * l.interval!, 0)), 400, 'self-metrics summed over workers');
});

t.test('a worker that dies is restarted and the others keep going', async (t) => {
  const c = startCli(['--statsd-udp', '127.0.0.1:0', '--workers', '2', '--flush-interval', '1h']);
  const port = portOf(await c.listening, 'udp');
  const workerPids = () => [...c.stderr().matchAll(/"workerPid":(\d+)/g)].map((m) => Number(m[1]));
  const before = [...new Set(workerPids())];
  t.ok(before.length >= 1, 'worker log lines carry their pid');
  process.kill(before[0]!, 'SIGKILL');
  const deadline = Date.now() + 10_000;
  while (!/UDP worker died/.test(c.stderr()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.match(c.stderr(), /UDP worker died/);
  // Wait for the replacement to listen, then traffic still flows.
  while ([...new Set(workerPids())].length < before.length + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await sendUdp(port, Array.from({ length: 50 }, () => 'alive:1|c'));
  await new Promise((r) => setTimeout(r, 200));
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0);
  t.equal(Math.round(total(c.lines, 'alive')), 50);
  // Regression (system tests): the death is visible as a self-metric, not only in the log.
  t.equal(Math.round(total(c.lines, 'metrics_distributor.worker_deaths')), 1, 'metrics_distributor.worker_deaths counted');
});

t.test('--workers 2 on a port already taken: start-up fails promptly with exit 1, naming the worker failure', async (t) => {
  const holder = createSocket('udp4');
  await new Promise<void>((resolve) => holder.bind({ address: '127.0.0.1', port: 0 }, resolve));
  t.teardown(() => holder.close());
  const port = holder.address().port;
  const c = startCli(['--statsd-udp', `127.0.0.1:${port}`, '--workers', '2']);
  const exited = await Promise.race([c.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 15_000))]);
  t.equal(exited?.code, 1, 'exit 1, and promptly');
  t.match(c.stderr(), /Start-up failed/);
  t.match(c.stderr(), /UDP worker failed to start/);
});

t.test('--workers 2 --statsd-udp-reader batch: every worker reads the shared socket in batches, totals exact', async (t) => {
  const c = startCli(['--statsd-udp', '127.0.0.1:0', '--workers', '2', '--statsd-udp-reader', 'batch', '--flush-interval', '1h']);
  const port = portOf(await c.listening, 'udp');
  const listening = c.stderr().split('\n').filter((l) => l.includes('StatsD UDP listening.'));
  t.equal(listening.length, 2, 'one listening line per worker');
  t.ok(listening.every((l) => l.includes('"reader":"batch"')), 'both workers read with the batch reader');
  await sendUdp(port, Array.from({ length: 600 }, (_, i) => `wb.count:1|c\nwb.count:2|c\nwb.g:${i}|g`));
  await new Promise((r) => setTimeout(r, 200));
  c.proc.kill('SIGTERM');
  t.equal((await c.exited).code, 0);
  t.equal(Math.round(total(c.lines, 'wb.count')), 600 * 3, 'every increment counted exactly once across the workers');
});
