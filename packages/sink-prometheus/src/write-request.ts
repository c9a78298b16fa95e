/**
 * The remote-write 1.0 `prometheus.WriteRequest` protobuf (https://prometheus.io/docs/specs/remote_write_spec/):
 * four messages of plain fields, written with core's ProtoWriter. A series' labels are encoded once
 * into one buffer, with the byte offsets where `__name__` and `le`/`quantile` slot in by name order,
 * and every sample is appended straight into the request being built: no Buffer per sample, and a
 * request splits at the entry boundaries it records.
 */
import { ProtoWriter, WIRE_LEN, WIRE_VARINT, varintSize } from '@metrics-distributor/core';

/** A label pair, name and value as Prometheus stores them. */
export type LabelPair = readonly [name: string, value: string];

/** Field numbers: WriteRequest.timeseries, TimeSeries.labels/samples, Label.name/value, Sample.value/timestamp. */
const F_TIMESERIES = 1;
const F_LABELS = 1;
const F_SAMPLES = 2;
const F_LABEL_NAME = 1;
const F_LABEL_VALUE = 2;
const F_SAMPLE_VALUE = 1;
const F_SAMPLE_TIMESTAMP = 2;
/** A Sample's size without its timestamp varint: two tags and a double. */
const SAMPLE_FIXED = 1 + 8 + 1;

/** A series' labels, encoded once, sorted by name, and where the extra labels of its samples go. */
export interface EncodedLabelSet {
  /** The `TimeSeries.labels` fields, concatenated in name order. */
  readonly bytes: Buffer;
  /** Byte offset in {@link bytes} where `__name__` goes (before the first name sorting after it). */
  readonly nameAt: number;
  /** Where `le` goes. */
  readonly leAt: number;
  /** Where `quantile` goes. */
  readonly quantileAt: number;
}

function labelField(w: ProtoWriter, name: string, value: string): void {
  const n = Buffer.byteLength(name);
  const v = Buffer.byteLength(value);
  w.tag(F_LABELS, WIRE_LEN);
  w.varint(1 + varintSize(n) + n + 1 + varintSize(v) + v);
  w.presentString(F_LABEL_NAME, name);
  w.presentString(F_LABEL_VALUE, value);
}

/** One `TimeSeries.labels` field (tag and length included): an extra label (`__name__`, `le`, `quantile`) of a sample. */
export function encodeLabel(name: string, value: string): Buffer {
  const w = new ProtoWriter(16 + 2 * (name.length + value.length));
  labelField(w, name, value);
  return Buffer.from(w.finish());
}

/** Byte order of UTF-16 strings matches UTF-8 byte order except around surrogates; label names are ASCII. */
function byName(a: LabelPair, b: LabelPair): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/**
 * A series' labels encoded once. The extras' names never equal a tag's (`__x`, `le` and `quantile`
 * tags are renamed), so each goes before the first label sorting after it.
 */
export function encodeLabelSet(pairs: readonly LabelPair[]): EncodedLabelSet {
  const sorted = [...pairs].sort(byName);
  const w = new ProtoWriter(64);
  let nameAt = -1;
  let leAt = -1;
  let quantileAt = -1;
  for (const [name, value] of sorted) {
    if (nameAt < 0 && '__name__' < name) nameAt = w.length;
    if (leAt < 0 && 'le' < name) leAt = w.length;
    if (quantileAt < 0 && 'quantile' < name) quantileAt = w.length;
    labelField(w, name, value);
  }
  const end = w.length;
  return { bytes: Buffer.from(w.finish()), nameAt: nameAt < 0 ? end : nameAt, leAt: leAt < 0 ? end : leAt, quantileAt: quantileAt < 0 ? end : quantileAt };
}

/** A finished request body before compression, and where each of its TimeSeries entries ends. */
export interface RawWriteRequest {
  /** Concatenated `WriteRequest.timeseries` fields: a whole `WriteRequest`. */
  readonly raw: Buffer;
  /** End offset of each entry in {@link raw}, ascending; one entry per sample. */
  readonly ends: Uint32Array;
}

/** The first `n` entries of a request and the rest, as two requests (a 413 split). */
export function splitRequest(r: RawWriteRequest, n: number): [RawWriteRequest, RawWriteRequest] {
  const cut = r.ends[n - 1]!;
  const rest = r.ends.slice(n);
  for (let i = 0; i < rest.length; i++) rest[i]! -= cut;
  return [
    { raw: r.raw.subarray(0, cut), ends: r.ends.subarray(0, n) },
    { raw: r.raw.subarray(cut), ends: rest },
  ];
}

/** Start of a `__name__` label's message: the name field, then the value field's tag (its length and bytes follow). */
const NAME_HEAD = Buffer.from([(F_LABEL_NAME << 3) | WIRE_LEN, 8, ...Buffer.from('__name__'), (F_LABEL_VALUE << 3) | WIRE_LEN]);

/**
 * Builds request bodies sample by sample into one reused buffer; {@link take} copies the body out.
 * A sample is `labels` with `__name__` (the family name's UTF-8 bytes and a suffix such as `_sum`,
 * written in place: no Buffer per sample name) and an optional `extra` field (`le` or `quantile`,
 * inserted at `extraAt`) merged in by name, one double and a timestamp.
 */
export class WriteRequestBuilder {
  private readonly w = new ProtoWriter(256 * 1024);
  private ends: number[] = [];

  /** Samples in the request being built. */
  get samples(): number {
    return this.ends.length;
  }

  /** Appends one TimeSeries entry of one sample; `timestampMs` is a non-negative integer. */
  add(labels: EncodedLabelSet, name: Buffer, suffix: Buffer, extra: Buffer | undefined, extraAt: number, value: number, timestampMs: number): void {
    const lb = labels.bytes;
    const sampleMsg = SAMPLE_FIXED + varintSize(timestampMs);
    const extraLen = extra === undefined ? 0 : extra.length;
    const nameLen = name.length + suffix.length;
    const nameMsg = NAME_HEAD.length + varintSize(nameLen) + nameLen;
    const nameField = 1 + varintSize(nameMsg) + nameMsg;
    const w = this.w;
    w.tag(F_TIMESERIES, WIRE_LEN);
    w.varint(lb.length + nameField + extraLen + 1 + varintSize(sampleMsg) + sampleMsg);
    const at = labels.nameAt;
    w.raw(lb, 0, at);
    w.tag(F_LABELS, WIRE_LEN);
    w.varint(nameMsg);
    w.raw(NAME_HEAD, 0, NAME_HEAD.length);
    w.varint(nameLen);
    w.raw(name, 0, name.length);
    w.raw(suffix, 0, suffix.length);
    if (extra === undefined) w.raw(lb, at, lb.length);
    else {
      w.raw(lb, at, extraAt);
      w.raw(extra, 0, extraLen);
      w.raw(lb, extraAt, lb.length);
    }
    w.tag(F_SAMPLES, WIRE_LEN);
    w.varint(sampleMsg);
    w.presentDouble(F_SAMPLE_VALUE, value);
    w.tag(F_SAMPLE_TIMESTAMP, WIRE_VARINT);
    w.varint(timestampMs);
    this.ends.push(w.length);
  }

  /** The request built so far (a copy), and a fresh one started. */
  take(): RawWriteRequest {
    const out = { raw: Buffer.from(this.w.finish()), ends: Uint32Array.from(this.ends) };
    this.w.reset();
    this.ends = [];
    return out;
  }
}

/**
 * One `WriteRequest.timeseries` entry (field 1, tag and length included) of one sample, from label
 * pairs in any order (`__name__` among them): the plain form, which tests hold the builder to.
 */
export function encodeTimeSeries(labels: readonly LabelPair[], value: number, timestampMs: number): Buffer {
  const w = new ProtoWriter(64);
  const series = new ProtoWriter(64);
  for (const [name, v] of [...labels].sort(byName)) labelField(series, name, v);
  const sample = new ProtoWriter(24);
  sample.presentDouble(F_SAMPLE_VALUE, value);
  sample.tag(F_SAMPLE_TIMESTAMP, WIRE_VARINT);
  sample.varint(timestampMs);
  series.bytes(F_SAMPLES, sample.finish());
  w.bytes(F_TIMESERIES, series.finish());
  return Buffer.from(w.finish());
}
