/**
 * The stand-in Datadog intake of the system tests: the sink package's fake intake
 * (`@metrics-distributor/sink-datadog/testing`, a real HTTP server on 127.0.0.1:0 that records,
 * decodes and answers as scripted), plus helpers that total what arrived.
 */
import { startFakeIntake, type FakeIntake, type FakeReply, type FakeRequest, type FakeScript, type FakeSeries } from '@metrics-distributor/sink-datadog/testing';

/** A series v2 item as the sink sends it. */
export type V2Series = FakeSeries;
/** One request as the stand-in saw it. */
export type Received = FakeRequest;
/** How to answer one request. */
export type Reply = FakeReply;
/** Decides the answer to each request. */
export type Script = FakeScript;
/** The running stand-in. */
export type StandIn = FakeIntake;

/** Starts the stand-in; the default answer is 202 (200 for GET). */
export const startStandIn = (script?: Script): Promise<StandIn> => startFakeIntake(script);

/** Arguments pointing the CLI's Datadog sink at the stand-in. */
export const datadogArgs = (s: { url: string }): string[] => ['--sink', 'datadog', '--datadog-api-key', 'k', '--datadog-url', s.url];

const tagsOf = (s: V2Series) => [...(s.tags ?? [])].sort();
const hostOf = (s: V2Series) => s.resources?.find((r) => r.type === 'host')?.name ?? '';

/** Identity of one point: metric, timestamp, host and tags. */
export const pointKey = (s: V2Series): string => `${s.metric}|${s.points[0]?.timestamp}|${hostOf(s)}|${tagsOf(s).join(',')}`;

/** The count a rate or count point stands for (rate × interval). */
export function countOf(s: V2Series): number {
  const p = s.points[0];
  if (p === undefined) return 0;
  if (s.type === 2) return p.value * (s.interval ?? 0);
  if (s.type === 1) return p.value;
  throw new Error(`${s.metric} is a gauge, not a count`);
}

/** Σ rate × interval (or count) over every point of `metric` whose tags include all of `tags`. */
export function total(series: readonly V2Series[], metric: string, tags: readonly string[] = []): number {
  let sum = 0;
  for (const s of series) {
    if (s.metric !== metric) continue;
    const own = s.tags ?? [];
    if (tags.every((t) => own.includes(t))) sum += countOf(s);
  }
  // rate × interval may carry binary rounding: the totals the tests compare are integers.
  return Math.round(sum * 1e6) / 1e6;
}

/** Self-metric total: `metrics_distributor.<field>` for a component (and a drop reason). */
export function selfTotal(series: readonly V2Series[], field: string, component: string, reason?: string): number {
  return total(series, `metrics_distributor.${field}`, [`component:${component}`, ...(reason !== undefined ? [`reason:${reason}`] : [])]);
}

/** Keys seen more than once (a point delivered twice). */
export function duplicates(series: readonly V2Series[]): string[] {
  const seen = new Map<string, number>();
  for (const s of series) seen.set(pointKey(s), (seen.get(pointKey(s)) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([k, n]) => `${k} ×${n}`);
}
