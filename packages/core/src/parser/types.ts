import type { ErrorCode } from '../errors.js';
import type { MetricType, ServiceCheck, StatsdEvent } from '../model.js';

/**
 * A parsed metric line described by offsets into the packet buffer. The parser owns one instance and
 * overwrites it for every line, so the hot path allocates no object or string per line.
 * A handler must copy what it keeps before returning.
 */
export interface SampleView {
  /** The packet the offsets point into. */
  buf: Buffer;
  /** Name bytes are `buf[nameStart, nameEnd)`. */
  nameStart: number;
  nameEnd: number;
  /**
   * FNV-1a of the name bytes from {@link StatsdParserOptions.nameHashBasis}, computed during the scan
   * that finds the name's end, so a caller keying on the name need not read its bytes again.
   */
  nameHash: number;
  /** Wire type. */
  type: MetricType;
  /** Parsed numeric values; only the first `valueCount` are valid (multi-value lines give several). */
  values: Float64Array;
  /** How many entries of `values` are valid; 0 for sets. */
  valueCount: number;
  /** For sets: the raw member bytes `buf[setStart, setEnd)`. */
  setStart: number;
  setEnd: number;
  /** Sample rate; anything outside (0, 1] (or unparseable-but-accepted) is reported as 1. */
  sampleRate: number;
  /** Raw tag bytes after `#` (comma-separated): `buf[tagsStart, tagsEnd)`; both -1 when absent. */
  tagsStart: number;
  tagsEnd: number;
  /** Unix seconds from `|T`, or 0 when absent. */
  timestampS: number;
  /** Gauge delta sign when gauge deltas are enabled and the value had an explicit sign: +1/-1; else 0. */
  gaugeDelta: 0 | 1 | -1;
  /** `|c:` container field bytes, -1 when absent. */
  containerStart: number;
  containerEnd: number;
  /** `|card:` cardinality bytes, -1 when absent. */
  cardinalityStart: number;
  cardinalityEnd: number;
}

/** Receives what the parser finds, line by line. */
export interface StatsdHandler {
  /** A metric line; `view` is only valid during the call. */
  sample(view: SampleView): void;
  /** A complete event. */
  event(event: StatsdEvent): void;
  /** A complete service check. */
  serviceCheck(check: ServiceCheck): void;
  /** A rejected line `buf[start, end)` with the reason; the parser then goes on with the next line. */
  bad(code: ErrorCode, buf: Buffer, start: number, end: number): void;
}

/** Parser options. */
export interface StatsdParserOptions {
  /** Etsy-style `+4|g` / `-2|g` deltas; off by default as in the Datadog agent. */
  gaugeDeltas?: boolean;
  /** Starting value of {@link SampleView.nameHash} (a seeded FNV-1a offset basis). Default 0x811c9dc5. */
  nameHashBasis?: number;
}
