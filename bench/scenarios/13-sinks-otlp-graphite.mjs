// Scenario 13: a 200,000-context window exported by the OTLP and the Graphite sinks (a real CLI child
// each), with the server's own event-loop delay during the export (target ≤ 50 ms, as for Datadog).
import { createServer as createHttp } from 'node:http';
import { createServer as createTcp } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { skipped } from '../lib/servers.mjs';
import { SINK_WINDOW_S, epochMs, sinkWindow } from '../lib/sink-window.mjs';

const LOOP_METRIC = 'metrics_distributor.event_loop_delay_max_ms';
/** The OTLP sink's own longest synchronous slice of each export. */
const SLICE_METRIC = 'metrics_distributor.export_slice_max_ms';

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

/** The fields of the message in `b[from, to)`: `{ field, wire, at, end }`, `at` the value's first byte and `end` the next field's. */
function* fields(b, from = 0, to = b.length) {
  for (let i = from; i < to; ) {
    const [key, at] = varint(b, i);
    const wire = key & 7;
    let end;
    let start = at;
    if (wire === 0) end = varint(b, at)[1];
    else if (wire === 1) end = at + 8;
    else if (wire === 5) end = at + 4;
    else if (wire === 2) {
      const [len, s] = varint(b, at);
      start = s;
      end = s + len;
    } else return;
    yield { field: Math.floor(key / 8), wire, at: start, end };
    i = end;
  }
}

/**
 * The window (start, epoch ms) of an OTLP protobuf request: its first data point's start time. A
 * request holds points of one window only, so this tells the export's requests from later windows'.
 */
function windowOfRequest(body) {
  for (const rm of fields(body)) {
    for (const sm of fields(body, rm.at, rm.end)) {
      if (sm.field !== 2) continue;
      for (const m of fields(body, sm.at, sm.end)) {
        if (m.field !== 2) continue;
        for (const data of fields(body, m.at, m.end)) {
          if (data.wire !== 2 || data.field < 5) continue;
          for (const dp of fields(body, data.at, data.end)) {
            if (dp.field !== 1) continue;
            for (const f of fields(body, dp.at, dp.end)) if (f.field === 2 && f.wire === 1) return Number(body.readBigUInt64LE(f.at) / 1_000_000n);
          }
        }
      }
    }
  }
  return undefined;
}

/**
 * A gauge (the loop delay's, by default) in an OTLP protobuf request, without a schema: after the metric's name come
 * `gauge` (field 5) and one NumberDataPoint (field 1) whose `as_double` (field 4, fixed64) follows
 * the two timestamps, the first (field 2) the start of the window the value covers. Enough for the
 * one metric this bench reads; the tests decode fully. Returns `{ value, windowMs }` of each.
 */
function loopDelayIn(body, metric = LOOP_METRIC) {
  const name = Buffer.from(metric);
  const out = [];
  for (let at = body.indexOf(name); at >= 0; at = body.indexOf(name, at + 1)) {
    let i = at + name.length;
    if (body[i] !== 0x2a) continue;
    i = varint(body, i + 1)[1];
    if (body[i] !== 0x0a) continue;
    const [len, start] = varint(body, i + 1);
    let windowMs;
    for (let j = start; j < start + len; ) {
      const tag = body[j];
      if (tag === 0x21) {
        out.push({ value: body.readDoubleLE(j + 1), windowMs });
        break;
      }
      if (tag === 0x11) windowMs = Number(body.readBigUInt64LE(j + 1) / 1_000_000n);
      if (tag === 0x11 || tag === 0x19) j += 9;
      else break;
    }
  }
  return out;
}

/** A stand-in collector: counts requests and bytes, and the window of each; reads the loop-delay gauge. */
function otlpStandIn() {
  const arrivals = [];
  const loop = [];
  const slices = [];
  let server;
  return {
    arrivals,
    selfLoopMs: () => loop,
    selfSliceMs: () => slices,
    async start() {
      server = createHttp((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
          const t = epochMs();
          const raw = Buffer.concat(chunks);
          const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
          arrivals.push({ t, bytes: raw.length, units: 0, windowMs: windowOfRequest(body) });
          for (const { value, windowMs } of loopDelayIn(body)) loop.push({ t, value, windowMs });
          for (const { value, windowMs } of loopDelayIn(body, SLICE_METRIC)) slices.push({ t, value, windowMs });
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

/** A stand-in carbon: counts lines and bytes per read and window (each line's timestamp); reads the loop-delay gauge's lines. */
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
          // Lines of a read may belong to two windows (one batch's end, the next one's start).
          const byWindow = new Map();
          for (let from = 0, i = text.indexOf('\n'); i >= 0 && i <= cut; from = i + 1, i = text.indexOf('\n', from)) {
            const windowMs = Number(text.slice(text.lastIndexOf(' ', i) + 1, i)) * 1000;
            const w = byWindow.get(windowMs) ?? { bytes: 0, units: 0 };
            w.bytes += i + 1 - from;
            w.units++;
            byWindow.set(windowMs, w);
          }
          for (const [windowMs, w] of byWindow) arrivals.push({ t, bytes: w.bytes, units: w.units, windowMs });
          for (let at = text.indexOf(LOOP_METRIC); at >= 0 && at < cut; at = text.indexOf(LOOP_METRIC, at + 1)) {
            const end = text.indexOf('\n', at);
            const [, value, ts] = text.slice(at, end).split(' ');
            loop.push({ t, value: Number(value), windowMs: Number(ts) * 1000 });
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
    const cpu = (r.exportCpuMs === undefined ? '' : `, ${r.exportCpuMs.toFixed(0)} ms server CPU`) + (r.sliceMaxMs === undefined ? '' : `, longest slice ${r.sliceMaxMs.toFixed(1)} ms`);
    rows.push({
      id: '13',
      name,
      ours: `loop delay ${r.loopDelayMaxMs?.toFixed(0) ?? 'n/a'} ms; export ${r.exportMs.toFixed(0)} ms (${r.windows} window(s)${cpu}); ${amount}`,
      baseline: '—',
      ratio: '—',
      target,
      met: r.loopDelayMaxMs === undefined ? null : r.loopDelayMaxMs <= 50,
    });
  }
  return { rows, details };
}
