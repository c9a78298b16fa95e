// What the sink's benchmarks share: one HTTP scrape of the sink, and a measurement of one step.
import { request } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** One HTTP scrape of `/metrics` on 127.0.0.1:`port`; resolves with the body size on the wire. */
export function scrape(port, headers) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', headers, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c) => (bytes += c.length));
      res.on('end', () => resolve(bytes));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Runs `fn`: its wall time, the process' CPU time meanwhile, the worst event-loop delay (1 ms timer) and its result. */
export async function measure(fn) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await fn();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  h.disable();
  return { ms, cpuMs: (c.user + c.system) / 1000, maxDelayMs: h.max / 1e6, r };
}
