// Scenario 6: HTTP logplex drains with Basic auth, pipelined; ours against an empty fastify route.
import { Socket } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, FASTIFY_FROM, cpuSeconds, now, spawnTracked, stopTracked } from '../harness.mjs';
import { SIZE, log } from '../lib/options.mjs';
import { fmtRatio, ratio, si } from '../lib/format.mjs';
import { probeFeature, skipped } from '../lib/servers.mjs';

/** Logplex body of `frames` frames, half Heroku router lines, half l2met app lines. */
function logplexBody(frames) {
  const ts = new Date().toISOString().replace('Z', '000+00:00');
  const out = [];
  for (let i = 0; i < frames; i++) {
    const msg =
      i % 2 === 0
        ? `<158>1 ${ts} host heroku router - at=info method=GET path="/api/items/${i}" host=bench.herokuapp.com request_id=0b7c1f9e-4a4c-4d0e-9f0a-${String(i).padStart(12, '0')} fwd="10.0.0.${i % 250}" dyno=web.${1 + (i % 4)} connect=${i % 5}ms service=${10 + (i % 90)}ms status=${i % 10 === 0 ? 404 : 200} bytes=${900 + i} protocol=https`
        : `<190>1 ${ts} host app web.${1 + (i % 4)} - count#bench.s6.hits=1 sample#bench.s6.queue=${i % 50} measure#bench.s6.latency=${10 + (i % 90)}ms source=web.${1 + (i % 4)}`;
    out.push(`${Buffer.byteLength(msg)} ${msg}`);
  }
  return Buffer.from(out.join(''));
}

/**
 * Pipelined HTTP/1.1 load on raw sockets (cheap on the client side): `connections` keep-alive
 * connections with up to `depth` requests in flight each, until `total` responses or `maxSeconds`.
 */
async function httpLoad(port, { makeHead, body, total, connections, depth, maxSeconds }) {
  const t0 = now();
  const deadline = t0 + maxSeconds * 1000;
  let issued = 0;
  let done = 0;
  let failed = 0;
  let reconnects = 0;
  const statuses = {};
  await new Promise((finishAll) => {
    let open = 0;
    const maybeFinish = () => {
      if (open === 0) finishAll();
    };
    const start = () => {
      open++;
      const s = new Socket();
      let inflight = 0;
      let buf = Buffer.alloc(0);
      let closed = false;
      const pump = () => {
        while (!closed && inflight < depth && issued < total && now() < deadline) {
          issued++;
          inflight++;
          s.write(makeHead(issued, body.length));
          s.write(body);
        }
        if (inflight === 0 && (issued >= total || now() >= deadline)) s.end();
      };
      s.on('data', (d) => {
        buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
        for (;;) {
          const he = buf.indexOf('\r\n\r\n');
          if (he < 0) break;
          const head = buf.subarray(0, he).toString('latin1');
          const status = Number(head.slice(9, 12));
          const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          const len = cl === null ? 0 : Number(cl[1]);
          if (buf.length < he + 4 + len) break;
          buf = buf.subarray(he + 4 + len);
          statuses[status] = (statuses[status] ?? 0) + 1;
          done++;
          inflight--;
        }
        pump();
      });
      s.on('error', () => undefined);
      s.on('close', () => {
        closed = true;
        failed += inflight;
        open--;
        if ((issued < total && now() < deadline) && reconnects < 100) {
          reconnects++;
          start();
        }
        maybeFinish();
      });
      s.connect(port, '127.0.0.1', () => {
        s.setNoDelay(true);
        pump();
      });
    };
    for (let i = 0; i < connections; i++) start();
  });
  return { seconds: (now() - t0) / 1000, issued, done, failed, reconnects, statuses };
}

export async function scenario6() {
  const name = 'HTTP logplex, 100 frames/body, Basic auth';
  const target = '≥ 0.5× empty fastify route';
  let heroku = 0;
  let hits = 0;
  const onSeries = (o) => {
    if (o.metric === 'heroku.router.request' && o.type === 'rate') heroku += o.value * o.interval;
    else if (o.metric === 'bench.s6.hits' && o.type === 'rate') hits += o.value * o.interval;
  };
  const p = await probeFeature(['--http', '127.0.0.1:0', '--http-auth', 'bench:secret'], 'http', onSeries, '--http with --http-auth');
  if (p.srv === undefined) return skipped('6', name, target, p.why);
  const body = logplexBody(100);
  const auth = Buffer.from('bench:secret').toString('base64');
  const makeHead = (i, len) =>
    `POST /logs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic ${auth}\r\nContent-Type: application/logplex-1\r\nLogplex-Msg-Count: 100\r\nLogplex-Frame-Id: ${i.toString(16).padStart(32, '0')}\r\nLogplex-Drain-Token: d.bench\r\nContent-Length: ${len}\r\n\r\n`;
  const load = { makeHead, body, total: SIZE.s6Requests, connections: 4, depth: 2, maxSeconds: SIZE.s6MaxSeconds };
  const c0 = cpuSeconds(p.srv.pid);
  const run = await httpLoad(p.srv.portOf('http'), load);
  const cpu = cpuSeconds(p.srv.pid) - c0;
  await stopTracked(p.srv.h);
  const received = Math.round(heroku + hits);
  const o = { ...run, sentLogLines: run.done * 100, receivedLogLines: received, logLinesPerSec: received / run.seconds, serverCpuSeconds: cpu };
  log(`  ours: ${si(o.logLinesPerSec)} log lines/s (${JSON.stringify(run.statuses)}, received ${received} of ${run.issued * 100})`);
  if (!existsSync(FASTIFY_FROM)) {
    return { rows: [{ id: '6', name, ours: `${si(o.logLinesPerSec)} log lines/s`, baseline: 'skipped: fastify not found', ratio: '—', target, met: null }], details: { ours: o } };
  }
  const lines = [];
  const fh = spawnTracked(process.execPath, [join(BENCH_DIR, 'fastify-null.mjs'), FASTIFY_FROM], { onLine: (l) => lines.push(JSON.parse(l)) });
  const first = await fh.until(() => lines.find((l) => l.listening !== undefined), 15_000);
  if (first === undefined) throw new Error(`fastify baseline did not start: ${fh.stderr()}`);
  const nrun = await httpLoad(first.listening, load);
  await stopTracked(fh);
  const n = { ...nrun, logLinesPerSec: (nrun.statuses[200] ?? 0) * 100 / nrun.seconds, fastify: first.fastify };
  log(`  empty fastify route: ${si(n.logLinesPerSec)} log lines/s`);
  const r = ratio(o.logLinesPerSec, n.logLinesPerSec);
  return {
    rows: [{ id: '6', name, ours: `${si(o.logLinesPerSec)} log lines/s`, baseline: `empty fastify route ${si(n.logLinesPerSec)} log lines/s`, ratio: fmtRatio(r), target, met: r >= 0.5 && (run.statuses[200] ?? 0) === run.done }],
    details: { ours: o, fastify: n },
  };
}
