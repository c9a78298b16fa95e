/**
 * `GET /`: one self-contained page (inline CSS, inline script, SVG drawn by the script). It loads
 * nothing from anywhere: the Content-Security-Policy allows only this script and style, by hash,
 * and requests back to this server.
 */
import { createHash } from 'node:crypto';
import { PAGE_SCRIPT } from './page-script.js';

const PAGE_STYLE = `
:root { --fg:#1d2330; --muted:#6b7385; --line:#e3e6ec; --bg:#f6f7f9; --card:#fff; --ok:#1a7f37; --warn:#b26a00; --bad:#c62828;
  --okbg:#e6f4ea; --warnbg:#fff4e0; --badbg:#fdecea; --accent:#2f6fde; }
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 18px; padding: 10px 18px; background: var(--card); border-bottom: 1px solid var(--line); }
h1 { font-size: 16px; margin: 0; }
h1 small { font-weight: normal; color: var(--muted); margin-left: 4px; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 8px; }
h2 .muted { text-transform: none; letter-spacing: 0; font-weight: normal; }
dl.facts { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 0; }
dl.facts div { display: flex; gap: 5px; }
dt { color: var(--muted); }
dd { margin: 0; font-variant-numeric: tabular-nums; }
#problems { margin: 0; padding-left: 18px; color: var(--bad); flex-basis: 100%; }
#problems:empty { display: none; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 14px; padding: 14px 18px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; min-width: 0; overflow-x: auto; }
section.wide { grid-column: 1 / -1; }
table { border-collapse: collapse; width: 100%; }
th { text-align: left; font-weight: 600; color: var(--muted); border-bottom: 1px solid var(--line); padding: 4px 8px; white-space: nowrap; }
td { padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: middle; }
tbody.group tr:first-child td { border-top: 2px solid var(--line); }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name { font-weight: 600; white-space: nowrap; }
td.warn { color: var(--warn); font-weight: 600; }
td.empty { color: var(--muted); font-style: italic; }
td.empty.ok { color: var(--ok); }
.muted { color: var(--muted); }
code { font: 12px/1.3 ui-monospace, "DejaVu Sans Mono", monospace; background: #f0f2f5; padding: 1px 4px; border-radius: 3px; }
.group-label td { font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; background: #fafbfc; }
svg.spark { display: block; }
svg.spark .line { fill: none; stroke: var(--accent); stroke-width: 1.5; }
svg.spark .area { fill: var(--accent); opacity: .12; }
svg.spark.sink .line { stroke: #7b3fe4; }
svg.spark.sink .area { fill: #7b3fe4; }
svg.spark .base { stroke: var(--line); }
.badge, .state { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 12px; }
.ok.badge, .state-ok { background: var(--okbg); color: var(--ok); }
.bad.badge, .state-failing { background: var(--badbg); color: var(--bad); }
.state-retrying { background: var(--warnbg); color: var(--warn); }
tr.sink-failing td.name { color: var(--bad); }
.meter { display: inline-block; width: 70px; height: 8px; background: #edf0f4; border-radius: 4px; overflow: hidden; vertical-align: middle; margin-right: 6px; }
.meter .fill { display: block; height: 100%; background: var(--accent); }
.meter.warn .fill { background: var(--warn); }
.meter.bad .fill { background: var(--bad); }
tr.worst td { background: var(--badbg); }
tr.worst td.name, tr.worst td.recent { color: var(--bad); font-weight: 700; }
.tag-worst { margin-left: 6px; font-size: 11px; font-weight: 700; color: #fff; background: var(--bad); border-radius: 3px; padding: 0 5px; }
td.examples code.example { display: block; margin: 1px 0; white-space: nowrap; max-width: 460px; overflow: hidden; text-overflow: ellipsis; }
td.keys .key { display: inline-block; margin-right: 6px; color: var(--muted); white-space: nowrap; }
td.keys .key.top { color: var(--bad); font-weight: 600; }
.conn { margin-left: auto; font-size: 12px; }
.conn.ok { color: var(--ok); }
.conn.warn { color: var(--warn); }
.conn.bad { color: var(--bad); }
.toolbar { display: flex; align-items: center; gap: 12px; margin-bottom: 6px; }
.toolbar h2 { margin: 0; }
#ctx-error { color: var(--bad); }
footer { color: var(--muted); padding: 0 18px 14px; font-size: 12px; }
`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** The page's Content-Security-Policy: its own script and style by hash, requests to this origin only. */
export const PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(PAGE_SCRIPT)}`,
  `style-src ${sha256(PAGE_STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The whole page, built once at load. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>metrics-distributor status</title>
<link rel="icon" href="data:,">
<style>${PAGE_STYLE}</style>
</head>
<body>
<header>
  <h1>metrics-distributor<small id="version"></small></h1>
  <span id="ready" class="badge">…</span>
  <dl class="facts">
    <div><dt>uptime</dt><dd id="uptime">—</dd></div>
    <div><dt>listening</dt><dd id="listeners">—</dd></div>
    <div><dt>live contexts</dt><dd id="live-contexts">—</dd></div>
    <div><dt>RSS</dt><dd id="rss">—</dd></div>
    <div><dt>event-loop p99</dt><dd id="loop">—</dd></div>
  </dl>
  <span id="conn" class="conn warn">connecting…</span>
  <ul id="problems"></ul>
</header>
<main>
  <section id="throughput" class="wide">
    <h2>Throughput <span class="muted">— items per second, one point per sample</span></h2>
    <table>
      <thead><tr><th>component</th><th>recent</th><th class="num">now /s</th><th class="num">avg /s</th><th class="num">total</th><th class="num">bad</th><th class="num">dropped</th></tr></thead>
      <tbody class="group-label"><tr><td colspan="7">front-ends — lines received</td></tr></tbody>
      <tbody id="tp-frontends"></tbody>
      <tbody class="group-label"><tr><td colspan="7">sinks — windows sent</td></tr></tbody>
      <tbody id="tp-sinks"></tbody>
    </table>
  </section>
  <section id="sinks">
    <h2>Sink health</h2>
    <table>
      <thead><tr><th>sink</th><th>state</th><th>queue</th><th>retry buffer</th><th>last success</th><th>last error</th></tr></thead>
      <tbody id="sinks-body"></tbody>
    </table>
  </section>
  <section id="drops">
    <h2>Drops <span class="muted">— recent is over the last <span id="drops-span">0 s</span></span></h2>
    <table>
      <thead><tr><th>component</th><th>reason</th><th class="num">recent</th><th class="num">/s</th><th class="num">total</th></tr></thead>
      <tbody id="drops-body"></tbody>
    </table>
  </section>
  <section id="contexts" class="wide">
    <div class="toolbar">
      <h2>Top contexts</h2>
      <label>by <select id="ctx-by"><option value="contexts">live contexts</option><option value="samples">samples in the last window</option></select></label>
      <span id="ctx-summary" class="muted"></span>
      <span id="ctx-error"></span>
    </div>
    <table>
      <thead><tr><th>metric name</th><th class="num">contexts</th><th class="num">samples</th><th></th><th>tag keys (distinct values)</th><th>example tag sets</th></tr></thead>
      <tbody id="ctx-body"></tbody>
    </table>
  </section>
</main>
<footer id="updated"></footer>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
