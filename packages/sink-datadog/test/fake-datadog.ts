/**
 * Test helpers around the package's fake intake (`src/testing.ts`, fakeintake's contract, `datadog.md`
 * §5): sketch bodies decoded with protobufjs from the agent's .proto text, a sink wired to the fake
 * with short retry timings, captured logs, and small batch builders.
 */
import protobuf from 'protobufjs';
import { StatsRegistry, createRootLogger, sinkContext, type Logger, type MetricBatch, type Series } from '@metrics-distributor/core';
import { DatadogSink, type DatadogSinkOptions } from '../src/index.js';
import { startFakeIntake, type FakeIntake, type FakeReply, type FakeRequest, type FakeScript } from '../src/testing.js';

/** `DataDog/agent-payload:proto/metrics/agent_payload.proto`, the sketch part, verbatim in layout. */
export const AGENT_PAYLOAD_PROTO = `
syntax = "proto3";
package datadog.agentpayload;
message CommonMetadata { string agent_version=1; string timezone=2; double current_epoch=3; string internal_ip=4; string public_ip=5; string api_key=6; }
message Origin { reserved 1,2,3; uint32 origin_product=4; uint32 origin_category=5; uint32 origin_service=6; }
message Metadata { Origin origin = 1; }
message SketchPayload {
  message Sketch {
    message Distribution { int64 ts=1; int64 cnt=2; double min=3; double max=4; double avg=5; double sum=6;
      repeated double v=7; repeated uint32 g=8; repeated uint32 delta=9; repeated double buf=10; }
    message Dogsketch { int64 ts=1; int64 cnt=2; double min=3; double max=4; double avg=5; double sum=6;
      repeated sint32 k=7; repeated uint32 n=8; }
    string metric=1; string host=2; repeated Distribution distributions=3; repeated string tags=4;
    reserved 5,6; reserved "distributionsK","distributionsC";
    repeated Dogsketch dogsketches=7; Metadata metadata=8;
  }
  repeated Sketch sketches=1; CommonMetadata metadata=2;
}
`;

const SketchPayload = protobuf.parse(AGENT_PAYLOAD_PROTO).root.lookupType('datadog.agentpayload.SketchPayload');

/** A decoded agent Dogsketch (int64s as numbers). */
export interface DecodedDogsketch {
  ts: number;
  cnt: number;
  min: number;
  max: number;
  avg: number;
  sum: number;
  k: number[];
  n: number[];
}

/** A decoded agent Sketch. */
export interface DecodedSketch {
  metric: string;
  host: string;
  tags: string[];
  distributions: unknown[];
  dogsketches: DecodedDogsketch[];
}

/** Decodes a SketchPayload body with protobufjs; throws on any malformed byte. */
export function decodeSketchPayload(body: Buffer): { sketches: DecodedSketch[]; metadata: unknown; hasMetadata: boolean } {
  const msg = SketchPayload.decode(body);
  const obj = SketchPayload.toObject(msg, { longs: Number, defaults: true, arrays: true }) as { sketches: DecodedSketch[]; metadata: unknown };
  return { ...obj, hasMetadata: Object.prototype.hasOwnProperty.call(msg, 'metadata') && (msg as unknown as { metadata: unknown }).metadata != null };
}

/** One request as the stand-in saw it. */
export type Received = FakeRequest;

/** How to answer one request. */
export type Reply = FakeReply;

/** The stand-in server, with the sketches of accepted sketch bodies decoded. */
export interface FakeDatadog extends FakeIntake {
  /** Every sketch of accepted /api/beta/sketches bodies. */
  sketches(): DecodedSketch[];
}

/** Starts the package's fake intake (`src/testing.ts`) on 127.0.0.1, port 0. */
export async function startFakeDatadog(script?: FakeScript): Promise<FakeDatadog> {
  const fake = await startFakeIntake(script);
  return Object.assign(fake, { sketches: () => fake.accepted('/api/beta/sketches').flatMap((r) => decodeSketchPayload(r.body).sketches) });
}

/** A pino logger writing JSON lines into memory, so tests can read what was logged. */
export function captureLogger(): { logger: Logger; lines: () => Record<string, unknown>[]; text: () => string } {
  const raw: string[] = [];
  const logger = createRootLogger({ level: 'debug', destination: { write: (s: string) => void raw.push(s) } });
  return {
    logger,
    lines: () => raw.join('').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>),
    text: () => raw.join(''),
  };
}

/** A 32-character key, as Datadog's are; its last 4 characters are `9f3e`. */
export const API_KEY = 'a1b2c3d4e5f60718293a4b5c6d7e9f3e';

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A sink pointed at `fake` with short retry timings, its stats registry and captured logs. */
export function makeSink(fake: { url: string }, opts: Partial<DatadogSinkOptions> = {}) {
  const registry = new StatsRegistry();
  const log = captureLogger();
  const sink = new DatadogSink(
    { apiKey: API_KEY, url: fake.url, retryBaseMs: 20, retryMaxMs: 100, ...opts },
    sinkContext({ logger: log.logger, stats: registry }, 'datadog'),
    { detailStats: (c) => registry.component(c) },
  );
  return { sink, registry, stats: registry.component('sink-datadog'), log };
}

/** Unix seconds used by hand-built batches. */
export const TS = 1_700_000_000;

/** A gauge series named `metric`. */
export const gauge = (metric: string, tags: string[] = ['env:prod']): Series => ({ metric, type: 'gauge', timestamp: TS, value: 1, interval: 10, tags, host: 'web-1' });

/** A batch with only what is given; its window starts now, so retries are not refused for the data's age. */
export const batch = (b: Partial<MetricBatch>): MetricBatch => ({ windowStartMs: Date.now(), intervalMs: 10_000, series: [], sketches: [], events: [], serviceChecks: [], ...b });

/** Polls `pred` every 5 ms until it holds; for state the sink updates after the stand-in has answered. */
export async function eventually(pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
