/**
 * The status page in a real browser: Debian's headless Chromium driven by playwright-core, against an
 * AdminServer whose fake sources change while the page is open. Saves a screenshot as a test artifact
 * (test/artifacts/status.png); with UPDATE_SCREENSHOT=1 also as the README's docs/admin-page.png.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { SinkStatus } from '../src/index.js';
import { FakeSources, startServer } from './helpers.js';

/** The little of the DOM the page functions below touch (the package compiles without lib.dom). */
declare const document: { body: { dataset: Record<string, string | undefined> }; querySelector(s: string): { getAttribute(n: string): string | null } | null };

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const DOCS_SHOT = fileURLToPath(new URL('../../../docs/admin-page.png', import.meta.url));

if (!existsSync(CHROMIUM)) {
  t.comment(`SKIP browser test: ${CHROMIUM} is absent (apt-get install -y chromium)`);
  t.pass('skipped: no Chromium', { skip: `${CHROMIUM} is absent; install it with apt-get install -y chromium` });
} else {
  t.test('the status page shows what the sources report and keeps updating', async (t) => {
    const src = new FakeSources();
    src.startedAtMs = Date.now() - 3 * 3600_000 - 17 * 60_000;
    src.listenerList = ['udp://127.0.0.1:8125', 'tcp://127.0.0.1:8125', 'http://127.0.0.1:8080'];
    src.frontendList = ['statsd-udp', 'statsd-tcp', 'http'];
    src.live = 48_210;
    const udp = src.stats.component('statsd-udp');
    const tcp = src.stats.component('statsd-tcp');
    const http = src.stats.component('http');
    const agg = src.stats.component('aggregator');
    const dd = src.stats.component('sink-datadog');
    const cons = src.stats.component('sink-console');
    const datadog: SinkStatus = {
      name: 'datadog',
      queueDepth: 3,
      maxBatches: 16,
      retryBufferBytes: 2 * 1024 * 1024,
      retryBufferMaxBytes: 8 * 1024 * 1024,
      lastSuccessMs: Date.now() - 5 * 60_000,
      lastError: { code: 'MD_ERR_SINK_EXPORT', message: 'intake answered 503 Service Unavailable', atMs: Date.now() - 2000 },
    };
    const consoleSink: SinkStatus = { name: 'console', queueDepth: 0, maxBatches: 16, retryBufferBytes: 0, retryBufferMaxBytes: 0, lastSuccessMs: Date.now(), lastError: undefined };
    src.sinkList = [datadog, consoleSink];
    src.report = {
      windowStartMs: Date.now(),
      liveContexts: 48_210,
      maxContexts: 100_000,
      names: 3,
      truncated: false,
      entries: [
        { name: 'api.request.duration', contexts: 41_877, samples: 90_311, examples: [['env:prod', 'user_id:81723', 'route:/v1/items'], ['env:prod', 'user_id:5512', 'route:/v1/cart']], tagKeys: [{ key: 'user_id', values: 41_002 }, { key: 'route', values: 31 }, { key: 'env', values: 2 }] },
        { name: 'queue.jobs', contexts: 6_300, samples: 12_004, examples: [['queue:mail', 'worker:w-17']], tagKeys: [{ key: 'worker', values: 6_300 }] },
        { name: 'cache.hit', contexts: 33, samples: 50_000, examples: [['<img src=x onerror=alert(1)>']], tagKeys: [{ key: 'region', values: 33 }] },
      ],
    };

    let step = 0;
    const simulate = (): void => {
      step++;
      udp.packets += 40;
      udp.bytes += 40 * 1400;
      udp.received += 1000 + 400 * Math.round(1 + Math.sin(step / 3));
      udp.parsed = udp.received - udp.bad;
      if (step % 4 === 0) udp.bad += 1;
      tcp.received += 150 + (step % 5) * 20;
      http.received += step % 3 === 0 ? 300 : 40;
      if (step % 2 === 0) agg.drop('max_contexts', 25);
      if (step % 5 === 0) udp.drop('truncated', 1);
      dd.received += 1;
      dd.failed += step % 3 === 0 ? 1 : 0;
      if (step % 3 === 0) dd.drop('retry_buffer_full', 60);
      datadog.queueDepth = Math.min(datadog.maxBatches, datadog.queueDepth + (step % 2));
      datadog.retryBufferBytes = Math.min(datadog.retryBufferMaxBytes, datadog.retryBufferBytes + 96 * 1024);
      datadog.lastError = { ...datadog.lastError!, atMs: Date.now() };
      cons.received += 1;
      cons.sent += 1;
      consoleSink.lastSuccessMs = Date.now();
    };
    const timer = setInterval(simulate, 100);
    t.teardown(() => clearInterval(timer));

    const { url } = await startServer(t, src, { sampleIntervalMs: 200, credentials: [{ user: 'ops', password: 'secret' }] });
    const profile = mkdtempSync(join(tmpdir(), 'md-admin-chromium-'));
    t.teardown(() => rmSync(profile, { recursive: true, force: true }));
    let browser: Browser;
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`],
        timeout: 60_000,
      });
    } catch (err) {
      // playwright refuses --user-data-dir in args on some versions; its own fresh profile is just as clean.
      if (!/user-data-dir/.test(String(err))) throw err;
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        timeout: 60_000,
      });
    }
    t.teardown(() => browser.close());
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, httpCredentials: { username: 'ops', password: 'secret' }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    const outside: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(url)) outside.push(r.url());
    });

    await page.goto(`${url}/`, { waitUntil: 'domcontentloaded' });
    await waitUpdates(page, 8);
    await page.waitForSelector('#ctx-body tr[data-name]');
    t.equal(await page.textContent('#conn'), 'live', 'fed by the event stream');

    // Let the ring fill (30 samples of 200 ms) and take the screenshot while traffic flows.
    await page.waitForFunction(() => (document.querySelector('tr[data-component="statsd-udp"] svg.spark polyline')?.getAttribute('points') ?? '').split(' ').length >= 30, undefined, { timeout: 30_000 });
    await page.waitForTimeout(300);
    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'status.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.ok(existsSync(shot), `screenshot saved to ${shot}`);
    if (process.env.UPDATE_SCREENSHOT === '1') copyFileSync(shot, DOCS_SHOT);

    // Then freeze the sources so the page can be compared with them.
    clearInterval(timer);
    const seen = await updates(page);
    await waitUpdates(page, seen + 2);

    const cell = (sel: string): Promise<string | null> => page.textContent(sel);
    t.equal(await cell('tr[data-component="statsd-udp"] td.total'), udp.received.toLocaleString('en-US'), 'udp total received matches');
    t.equal(await cell('tr[data-component="statsd-tcp"] td.total'), tcp.received.toLocaleString('en-US'), 'tcp total received matches');
    t.equal(await cell('tr[data-component="http"] td.total'), http.received.toLocaleString('en-US'));
    t.equal(await cell('tr[data-component="statsd-udp"] td.bad'), String(udp.bad));
    t.equal(await cell('tr[data-component="sink-console"] td.total'), cons.sent.toLocaleString('en-US'), 'sink row shows windows sent');
    const points = ((await page.getAttribute('tr[data-component="statsd-udp"] svg.spark polyline', 'points')) ?? '').split(' ').length;
    t.equal(points, 30, 'the sparkline has one point per sample, 30 at most');

    t.equal(await cell('tr[data-sink="datadog"] .state'), 'failing', 'the failing sink is shown as failing');
    t.equal(await cell('tr[data-sink="console"] .state'), 'ok');
    t.equal(await cell('tr[data-sink="datadog"] .queue-depth'), `${datadog.queueDepth} / 16`, 'queue depth as reported');
    t.match(await cell('tr[data-sink="datadog"] .retry-bytes'), / MiB \/ 8\.0 MiB$/);
    t.match(await cell('tr[data-sink="datadog"] .last-error'), /MD_ERR_SINK_EXPORT intake answered 503/);

    const worst = [await page.getAttribute('#drops-body tr.worst', 'data-component'), await page.getAttribute('#drops-body tr.worst', 'data-reason')];
    t.same(worst, ['sink-datadog', 'retry_buffer_full'], 'the most recent drops are highlighted');
    t.equal(await cell('#drops-body tr[data-reason="max_contexts"] td.total'), agg.dropped('max_contexts').toLocaleString('en-US'));

    t.equal(await cell('#ctx-body tr[data-name="api.request.duration"] td.contexts'), '41,877');
    t.match(await cell('#ctx-body tr[data-name="api.request.duration"] td.keys'), /user_id ×41,002/);
    t.equal(await page.locator('#ctx-body img').count(), 0, 'a tag is text, never markup');
    t.match(await cell('#ctx-body tr[data-name="cache.hit"] td.examples'), '<img src=x onerror=alert(1)>');
    t.equal(await cell('#ready'), 'ready');
    t.equal(await cell('#live-contexts'), '48,210');

    // Ranking by samples asks the server again.
    await page.selectOption('#ctx-by', 'samples');
    // The table already has rows from the first question, so wait for the new question itself.
    for (const until = Date.now() + 5000; Date.now() < until && !src.questions.some((q) => q.by === 'samples'); ) await page.waitForTimeout(50);
    t.ok(src.questions.some((q) => q.by === 'samples'), 'the select sends by=samples');
    await page.selectOption('#ctx-by', 'contexts');
    await page.waitForTimeout(300);

    // Readiness problems appear at once.
    src.ready = { ready: false, problems: ['sink datadog: queue 16/16 windows'] };
    const before = await updates(page);
    await waitUpdates(page, before + 1);
    t.equal(await cell('#ready'), 'not ready');
    t.equal(await cell('#problems li'), 'sink datadog: queue 16/16 windows');
    src.ready = { ready: true, problems: [] };
    await waitUpdates(page, before + 2);

    t.same(problems, [], 'no script error and no CSP violation');
    t.same(outside, [], 'nothing requested from anywhere else');

  });
}

async function updates(page: Page): Promise<number> {
  return Number(await page.getAttribute('body', 'data-updates'));
}

async function waitUpdates(page: Page, n: number): Promise<void> {
  await page.waitForFunction((k) => Number(document.body.dataset.updates ?? '0') >= k, n, { timeout: 30_000 });
}
