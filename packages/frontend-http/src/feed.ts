/**
 * One drain body's lines to the ingest target: router and l2met app lines, nearly all of the traffic,
 * through the cached readers (`router-line.ts`, `app-line.ts`) and their merged slots (`slots.ts`);
 * the rarer platform lines (`platform-lines.ts`) as plain samples, after what the readers merged so
 * far, so the target sees every sample in line order.
 */
import type { IngestTarget, Sample } from '@metrics-distributor/core';
import { AppLines } from './app-line.js';
import type { OnBad } from './heroku-metrics.js';
import { platformLine, routeOf, type LogLine } from './platform-lines.js';
import { RouterLines } from './router-line.js';
import { SlotMerger, type Base } from './slots.js';

/** Distinct drain-level `app:` tags remembered before every cache is emptied. */
export const MAX_BASES = 64;

/** Feeds the lines of drain bodies into one target through cached samples; one per front-end. */
export class SampleFeed {
  private readonly bases = new Map<string, Base>();
  private readonly merger: SlotMerger;
  private readonly routers: RouterLines;
  private readonly apps: AppLines;
  private readonly out: Sample[] = [];
  private base: Base | undefined;

  constructor(target: IngestTarget) {
    this.merger = new SlotMerger(target);
    this.routers = new RouterLines(this.merger);
    this.apps = new AppLines(this.merger);
  }

  /** Starts a body whose samples all carry `app:<app>` (none when undefined). */
  begin(app: string | undefined): void {
    this.merger.begin();
    const key = app ?? '';
    let b = this.bases.get(key);
    if (b === undefined) {
      if (this.bases.size >= MAX_BASES) this.clear();
      b = { tags: app === undefined ? [] : [`app:${app}`] };
      this.bases.set(key, b);
    }
    this.base = b;
  }

  /** One line of the body; returns the number of samples it made. */
  line(line: LogLine, onBad: OnBad): number {
    const base = this.base!;
    const route = routeOf(line);
    if (route === 'router') return this.routers.line(line.msg, base, onBad);
    if (route === 'app') return this.apps.line(line.msg, base, onBad);
    const out = this.out;
    out.length = 0;
    platformLine(line, base.tags, out, onBad);
    if (out.length === 0) return 0;
    // What the readers merged so far goes first, so the target sees the samples in line order.
    this.merger.flush();
    for (const s of out) this.merger.add(s);
    return out.length;
  }

  /** Hands over what the body merged; must be called once its lines are done. */
  end(): void {
    this.merger.flush();
    this.base = undefined;
  }

  private clear(): void {
    this.bases.clear();
    this.routers.clear();
    this.apps.clear();
  }
}
