// A local stand-in for the Datadog intake, for the flush-under-load scenario.
//   node fake-datadog.mjs <counterPrefix>
// Accepts every request (POST → 202 {"errors":[]}, GET /api/v1/validate → {"valid":true}) and records
// when each body finished arriving. Bodies are kept compressed and decoded only on SIGTERM, so the
// stand-in takes no CPU from the server while it flushes. Then it prints one JSON object: each
// request's arrival time (epoch ms), path and size, plus, from JSON series payloads (v1 or v2), the
// total count of counters whose name starts with <counterPrefix> and every metrics_distributor.* point.
import { createServer } from 'node:http';
import { writeSync } from 'node:fs';
import { gunzipSync, inflateSync, brotliDecompressSync } from 'node:zlib';

const prefix = process.argv[2] ?? 'bench.';
const MAX_KEPT_BYTES = 512 * 1024 * 1024;
const requests = [];
let kept = 0;

const server = createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (d) => {
    chunks.push(d);
    size += d.length;
  });
  req.on('end', () => {
    const t = performance.timeOrigin + performance.now();
    const keep = kept + size <= MAX_KEPT_BYTES;
    if (keep) kept += size;
    requests.push({
      t,
      method: req.method,
      path: req.url,
      bytes: size,
      encoding: req.headers['content-encoding'] ?? 'identity',
      contentType: req.headers['content-type'] ?? '',
      body: keep ? Buffer.concat(chunks, size) : undefined,
    });
    if (req.method === 'GET' && req.url.startsWith('/api/v1/validate')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"valid":true}');
    } else {
      res.writeHead(202, { 'content-type': 'application/json' }).end('{"errors":[]}');
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => writeSync(1, `${JSON.stringify({ listening: server.address().port })}\n`));

function decode(r) {
  if (r.body === undefined) return undefined;
  try {
    if (r.encoding === 'gzip') return gunzipSync(r.body);
    if (r.encoding === 'deflate') return inflateSync(r.body);
    if (r.encoding === 'br') return brotliDecompressSync(r.body);
    if (r.encoding === 'identity') return r.body;
  } catch {
    return undefined;
  }
  return undefined;
}

/** Count carried by one counter point: rate × interval, or the count itself. */
function countOf(s, value) {
  const rate = s.type === 'rate' || s.type === 2;
  const interval = typeof s.interval === 'number' && s.interval > 0 ? s.interval : 1;
  return rate ? value * interval : value;
}

function summarize() {
  let counterTotal = 0;
  let counterSeries = 0;
  const self = {};
  const out = [];
  for (const r of requests) {
    const item = { t: r.t, method: r.method, path: r.path, bytes: r.bytes, encoding: r.encoding, json: false, series: 0 };
    const raw = decode(r);
    if (raw !== undefined && raw.length > 0 && (raw[0] === 0x7b || raw[0] === 0x5b)) {
      try {
        const doc = JSON.parse(raw.toString('utf8'));
        item.json = true;
        item.decodedBytes = raw.length;
        const series = Array.isArray(doc) ? doc : Array.isArray(doc.series) ? doc.series : [];
        item.series = series.length;
        for (const s of series) {
          if (typeof s?.metric !== 'string' || !Array.isArray(s.points)) continue;
          for (const p of s.points) {
            const ts = Array.isArray(p) ? p[0] : p.timestamp;
            const value = Array.isArray(p) ? p[1] : p.value;
            if (typeof value !== 'number') continue;
            if (s.metric.startsWith(prefix) && (s.type === 'rate' || s.type === 'count' || s.type === 1 || s.type === 2)) {
              counterTotal += countOf(s, value);
              counterSeries++;
            } else if (s.metric.startsWith('metrics_distributor.')) {
              const key = `${s.metric}{${(s.tags ?? []).join(',')}}`;
              (self[key] ??= []).push({ ts, value, t: r.t });
            }
          }
        }
      } catch {
        // Not JSON after all (a sketch payload is protobuf): only its size and time are reported.
      }
    }
    out.push(item);
  }
  return { requests: out, counterTotal: Math.round(counterTotal), counterSeries, self };
}

process.on('SIGTERM', () => {
  server.close();
  writeSync(1, `${JSON.stringify(summarize())}\n`);
  process.exit(0);
});
