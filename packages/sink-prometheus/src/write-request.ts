/**
 * The remote-write 1.0 `prometheus.WriteRequest` protobuf, encoded by hand: four messages of plain
 * fields (https://prometheus.io/docs/specs/remote_write_spec/). Each TimeSeries entry is encoded on
 * its own, sized up front, so a request body is the concatenation of its entries and a request
 * splits by slicing the list.
 */

/** A label pair, name and value as Prometheus stores them. */
export type LabelPair = readonly [name: string, value: string];

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, o: number, n: number): number {
  // Timestamps pass 2^32: division, not bit shifts.
  while (n >= 0x80) {
    buf[o++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[o++] = n;
  return o;
}

/** Field tags: (field number << 3) | wire type (1 = 64-bit, 2 = length-delimited). */
const TAG_TIMESERIES = (1 << 3) | 2;
const TAG_LABELS = (1 << 3) | 2;
const TAG_SAMPLES = (2 << 3) | 2;
const TAG_LABEL_NAME = (1 << 3) | 2;
const TAG_LABEL_VALUE = (2 << 3) | 2;
const TAG_SAMPLE_VALUE = (1 << 3) | 1;
const TAG_SAMPLE_TIMESTAMP = 2 << 3;

/**
 * One `WriteRequest.timeseries` entry (field 1, tag and length included) of one sample. `labels` must
 * already be sorted by name, `__name__` among them, as the spec requires; `timestampMs` is an integer.
 */
export function encodeTimeSeries(labels: readonly LabelPair[], value: number, timestampMs: number): Buffer {
  return encodeTimeSeriesFrom(labels.map(([name, v]) => encodeLabel(name, v)), value, timestampMs);
}

/** One `TimeSeries.labels` field (tag and length included), encoded once and copied into every sample of a series. */
export function encodeLabel(name: string, value: string): Buffer {
  const n = Buffer.byteLength(name);
  const v = Buffer.byteLength(value);
  const msg = 1 + varintSize(n) + n + 1 + varintSize(v) + v;
  const buf = Buffer.allocUnsafe(1 + varintSize(msg) + msg);
  let o = 0;
  buf[o++] = TAG_LABELS;
  o = writeVarint(buf, o, msg);
  buf[o++] = TAG_LABEL_NAME;
  o = writeVarint(buf, o, n);
  o += buf.write(name, o, 'utf8');
  buf[o++] = TAG_LABEL_VALUE;
  o = writeVarint(buf, o, v);
  buf.write(value, o, 'utf8');
  return buf;
}

/**
 * The same entry as {@link encodeTimeSeries} from labels already encoded by {@link encodeLabel}, in
 * name order: a sample costs copies, not a UTF-8 encode of every label.
 */
export function encodeTimeSeriesFrom(labels: readonly Buffer[], value: number, timestampMs: number): Buffer {
  let labelBytes = 0;
  for (const l of labels) labelBytes += l.length;
  const sampleMsg = 1 + 8 + 1 + varintSize(timestampMs);
  const seriesMsg = labelBytes + 1 + varintSize(sampleMsg) + sampleMsg;
  const buf = Buffer.allocUnsafe(1 + varintSize(seriesMsg) + seriesMsg);
  let o = 0;
  buf[o++] = TAG_TIMESERIES;
  o = writeVarint(buf, o, seriesMsg);
  for (const l of labels) o += l.copy(buf, o);
  buf[o++] = TAG_SAMPLES;
  o = writeVarint(buf, o, sampleMsg);
  buf[o++] = TAG_SAMPLE_VALUE;
  o = buf.writeDoubleLE(value, o);
  buf[o++] = TAG_SAMPLE_TIMESTAMP;
  writeVarint(buf, o, timestampMs);
  return buf;
}
