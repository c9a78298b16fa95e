// Scenario 13: a 200,000-context window exported by the OTLP and the Graphite sinks (a real CLI child
// each), with the server's own event-loop delay during the export (target ≤ 50 ms, as for Datadog).
import { createServer as createHttp } from 'node:http';
import { createServer as createTcp } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { skipped } from '../lib/servers.mjs';
import { SINK_WINDOW_S, epochMs, sinkWindow } from '../lib/sink-window.mjs';

const LOOP_METRIC = 'metrics_distributor.event_loop_delay_max_ms';

/** Reads a varint at `i`: [value, next index]. */
function varint(b, i) {
  let v = 0;
  let mul = 1;
  for (;;) {
    const byte = b[i++];
    v += (byte & 0x7f) * mul;
    if ((byte & 0x80) === 0) return [v, i];
    mul *= 128;
  }
}

/**
 * The loop-delay gauge's value in an OTLP protobuf request, without a schema: after the metric's
 * name come `gauge` (field 5) and one NumberDataPoint (field 1) whose `as_double` (field 4, fixed64)
 * follows the two timestamps. Enough for the one metric this bench reads; the tests decode fully.
 */
function loopDelayIn(body) {
  const name = Buffer.from(LOOP_METRIC);
  const out = [];
  for (let at = body.indexOf(name); at >= 0; at = body.indexOf(name, at + 1)) {
    let i = at + name.length;
    if (body[i] !== 0x2a) continue;
    i = varint(body, i + 1)[1];
    if (body[i] !== 0x0a) continue;
    const [len, start] = varint(body, i + 1);
    for (let j = start; j < start + len; ) {
      const tag = body[j];
      if (tag === 0x21) {
        out.push(body.readDoubleLE(j + 1));
        break;
      }
      if (tag === 0x11 || tag === 0x19) j += 9;
      else break;
    }
  }
  return out;
}

/** A stand-in collector: counts requests, bytes and data points' worth of bytes; reads the loop-delay gauge. */
function otlpStandIn() {
  const arrivals = [];
  const loop = [];
  let server;
  return {
    arrivals,
    selfLoopMs: () => loop,
    async start() {
      server = createHttp((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
          const t = epochMs();
          const raw = Buffer.concat(chunks);
          const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
          arrivals.push({ t, bytes: raw.length, units: 0 });
          for (const value of loopDelayIn(body)) loop.push({ t, value });
          res.writeHead(200, { 'content-type': 'application/x-protobuf' });
          res.end();
        });
      });
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      return { args: ['--sink', 'otlp', '--otlp-endpoint', `http://127.0.0.1:${server.address().port}`] };
    },
    stop: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** A stand-in carbon: counts lines and bytes per read; reads the loop-delay gauge's lines. */
function graphiteStandIn() {
  const arrivals = [];
  const loop = [];
  let server;
  const sockets = new Set();
  return {
    arrivals,
    selfLoopMs: () => loop,
    async start() {
      server = createTcp((s) => {
        sockets.add(s);
        let rest = '';
        s.on('data', (d) => {
          const t = epochMs();
          const text = rest + d.toString('latin1');
          const cut = text.lastIndexOf('\n');
          rest = text.slice(cut + 1);
          let lines = 0;
          for (let i = text.indexOf('\n'); i >= 0 && i <= cut; i = text.indexOf('\n', i + 1)) lines++;
          arrivals.push({ t, bytes: d.length, units: lines });
          for (let at = text.indexOf(LOOP_METRIC); at >= 0 && at < cut; at = text.indexOf(LOOP_METRIC, at + 1)) {
            const end = text.indexOf('\n', at);
            const [, value] = text.slice(at, end).split(' ');
            loop.push({ t, value: Number(value) });
          }
        });
        s.on('close', () => sockets.delete(s));
        s.on('error', () => undefined);
      });
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      return { args: ['--sink', 'graphite', '--graphite-address', `127.0.0.1:${server.address().port}`] };
    },
    stop: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

export async function scenarioSinksOtlpGraphite() {
  const target = 'loop delay ≤ 50 ms during the export';
  const rows = [];
  const details = {};
  for (const [tag, label, standIn, feature, unit] of [
    ['s13otlp', 'OTLP', otlpStandIn(), '--sink otlp with --otlp-endpoint', 'requests'],
    ['s13graphite', 'Graphite', graphiteStandIn(), '--sink graphite with --graphite-address', 'lines'],
  ]) {
    const name = `200k-context window exported to a stand-in ${label} (${SINK_WINDOW_S} s window)`;
    const r = await sinkWindow({ tag, standIn, feature });
    if (r.why !== undefined) {
      rows.push(skipped('13', name, target, r.why).rows[0]);
      continue;
    }
    details[label] = r;
    const amount = unit === 'requests' ? `${r.requests} requests, ${r.bytes} bytes (gzip)` : `${r.units} lines, ${r.bytes} bytes`;
    rows.push({
      id: '13',
      name,
      ours: `loop delay ${r.loopDelayMaxMs?.toFixed(0) ?? 'n/a'} ms; export ${r.exportMs.toFixed(0)} ms; ${amount}`,
      baseline: '—',
      ratio: '—',
      target,
      met: r.loopDelayMaxMs === undefined ? null : r.loopDelayMaxMs <= 50,
    });
  }
  return { rows, details };
}
