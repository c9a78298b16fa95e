/** Decoders for the tests only: snappy block format and the remote-write protobuf, written from the specs. */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Decodes snappy's block format; throws on anything malformed. */
export function snappyDecode(src: Buffer): Buffer {
  let i = 0;
  let len = 0;
  for (let shift = 1; ; shift *= 128) {
    const b = src[i++]!;
    len += (b & 0x7f) * shift;
    if (b < 0x80) break;
  }
  const out = Buffer.alloc(len);
  let o = 0;
  while (i < src.length) {
    const tag = src[i++]!;
    const type = tag & 3;
    if (type === 0) {
      let n = tag >>> 2;
      if (n >= 60) {
        const bytes = n - 59;
        n = 0;
        for (let k = 0; k < bytes; k++) n += src[i++]! * 256 ** k;
      }
      n += 1;
      if (i + n > src.length || o + n > len) throw new Error('literal out of range');
      src.copy(out, o, i, i + n);
      i += n;
      o += n;
      continue;
    }
    let n: number, off: number;
    if (type === 1) {
      n = ((tag >>> 2) & 7) + 4;
      off = ((tag >>> 5) << 8) | src[i++]!;
    } else if (type === 2) {
      n = (tag >>> 2) + 1;
      off = src[i]! | (src[i + 1]! << 8);
      i += 2;
    } else {
      n = (tag >>> 2) + 1;
      off = src.readUInt32LE(i);
      i += 4;
    }
    if (off === 0 || off > o || o + n > len) throw new Error(`bad copy at ${o}: offset ${off} length ${n}`);
    for (let k = 0; k < n; k++, o++) out[o] = out[o - off]!;
  }
  if (o !== len) throw new Error(`decoded ${o} bytes, header said ${len}`);
  return out;
}

/** One decoded TimeSeries with its one sample. */
export interface WireSeries {
  labels: [string, string][];
  value: number;
  timestampMs: number;
}

function fields(buf: Buffer): { field: number; wire: number; bytes?: Buffer; num?: number; dbl?: number }[] {
  const out: { field: number; wire: number; bytes?: Buffer; num?: number; dbl?: number }[] = [];
  let i = 0;
  const varint = (): number => {
    let v = 0;
    for (let shift = 1; ; shift *= 128) {
      const b = buf[i++]!;
      v += (b & 0x7f) * shift;
      if (b < 0x80) return v;
    }
  };
  while (i < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 2) {
      const n = varint();
      out.push({ field, wire, bytes: buf.subarray(i, i + n) });
      i += n;
    } else if (wire === 0) out.push({ field, wire, num: varint() });
    else if (wire === 1) {
      out.push({ field, wire, dbl: buf.readDoubleLE(i) });
      i += 8;
    } else throw new Error(`unexpected wire type ${wire}`);
  }
  return out;
}

/** Decodes a `WriteRequest` body (after snappy). */
export function decodeWriteRequest(buf: Buffer): WireSeries[] {
  return fields(buf).map((ts) => {
    const s: WireSeries = { labels: [], value: NaN, timestampMs: NaN };
    for (const f of fields(ts.bytes!)) {
      const inner = fields(f.bytes!);
      if (f.field === 1) s.labels.push([inner.find((x) => x.field === 1)!.bytes!.toString('utf8'), inner.find((x) => x.field === 2)?.bytes?.toString('utf8') ?? '']);
      else {
        s.value = inner.find((x) => x.field === 1)?.dbl ?? 0;
        s.timestampMs = inner.find((x) => x.field === 2)?.num ?? 0;
      }
    }
    return s;
  });
}

/** One request the stand-in received. */
export interface SeenRequest {
  headers: IncomingHttpHeaders;
  series: WireSeries[];
  /** The body after snappy: the WriteRequest's bytes. */
  raw: Buffer;
  status: number;
  /** When it arrived (epoch ms). */
  at: number;
}

/** A remote-write stand-in: answers with `answer(n)` (status, headers) for its n-th request, decodes every body. */
export async function standIn(answer: (n: number, series: WireSeries[]) => { status: number; headers?: Record<string, string> } = () => ({ status: 204 })) {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = snappyDecode(Buffer.concat(chunks));
      const series = decodeWriteRequest(raw);
      const a = answer(seen.length, series);
      seen.push({ headers: req.headers, series, raw, status: a.status, at: Date.now() });
      res.writeHead(a.status, a.headers).end(a.status >= 400 ? 'refused' : '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/write`,
    seen,
    /** Samples accepted (2xx), by `name{labels}`. */
    accepted(): Map<string, number[]> {
      const m = new Map<string, number[]>();
      for (const r of seen) {
        if (r.status >= 300) continue;
        for (const s of r.series) {
          const key = s.labels.map(([k, v]) => `${k}=${v}`).join(',');
          m.set(key, [...(m.get(key) ?? []), s.value]);
        }
      }
      return m;
    },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
