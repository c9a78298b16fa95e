/**
 * The status page's script, sent inline. Plain ES2020 for any current browser, no framework. Every
 * value from the server goes in through `textContent` or an SVG attribute, never as HTML: metric
 * names, tags and sink error messages come from the outside and must not become markup.
 */

/** The script's source text (its SHA-256 goes into the page's Content-Security-Policy). */
export const PAGE_SCRIPT = String.raw`
'use strict';
const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const POLL_MS = 1000;
const CONTEXTS_MS = 5000;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) {
    if (k === 'class') e.className = attrs[k];
    else if (k === 'text') e.textContent = attrs[k];
    else e.setAttribute(k, attrs[k]);
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c);
  return e;
}

/** Exact integers with separators: totals must read as what was counted. */
function exact(n) {
  return typeof n === 'number' && Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—';
}

/** Short rates: 3 significant digits, k/M/G above a thousand. */
function short(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toPrecision(3) + 'G';
  if (a >= 1e6) return (n / 1e6).toPrecision(3) + 'M';
  if (a >= 1e3) return (n / 1e3).toPrecision(3) + 'k';
  if (a === 0) return '0';
  return a >= 100 ? n.toFixed(0) : a >= 10 ? n.toFixed(1) : n.toFixed(2);
}

function bytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + ' ' + units[i];
}

function ago(ms, now) {
  if (typeof ms !== 'number') return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return Math.floor(s / 86400) + ' d ago';
}

function duration(s) {
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d > 0 ? d + 'd ' + h + 'h' : h > 0 ? h + 'h ' + m + 'm' : m + 'm ' + (s % 60) + 's';
}

/** A sparkline: the series scaled to its own maximum, as an area under a line. */
function spark(values, points, cls) {
  const w = 150, h = 30;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
  svg.setAttribute('width', String(w));
  svg.setAttribute('height', String(h));
  svg.setAttribute('class', 'spark ' + (cls || ''));
  svg.setAttribute('role', 'img');
  const vals = values.slice(-points);
  const max = Math.max(0, ...vals);
  svg.setAttribute('aria-label', 'max ' + short(max) + '/s');
  const step = w / Math.max(1, points - 1);
  const x0 = w - step * (vals.length - 1);
  const xy = vals.map((v, i) => [x0 + i * step, h - 1 - (max > 0 ? (v / max) * (h - 3) : 0)]);
  const base = document.createElementNS(SVG, 'line');
  base.setAttribute('x1', '0'); base.setAttribute('x2', String(w));
  base.setAttribute('y1', String(h - 0.5)); base.setAttribute('y2', String(h - 0.5));
  base.setAttribute('class', 'base');
  svg.append(base);
  if (xy.length > 1) {
    const line = xy.map((p) => p[0].toFixed(1) + ',' + p[1].toFixed(1)).join(' ');
    const area = document.createElementNS(SVG, 'polygon');
    area.setAttribute('points', xy[0][0].toFixed(1) + ',' + h + ' ' + line + ' ' + xy[xy.length - 1][0].toFixed(1) + ',' + h);
    area.setAttribute('class', 'area');
    const pl = document.createElementNS(SVG, 'polyline');
    pl.setAttribute('points', line);
    pl.setAttribute('class', 'line');
    svg.append(area, pl);
  }
  return svg;
}

function meter(fraction, cls) {
  const m = el('span', { class: 'meter ' + (cls || '') });
  const f = el('span', { class: 'fill' });
  f.style.width = Math.round(Math.min(1, Math.max(0, fraction || 0)) * 100) + '%';
  m.append(f);
  return m;
}

function replaceRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function throughputRow(c, field, points) {
  const series = (c.series && c.series[field]) || [];
  const now = series.length > 0 ? series[series.length - 1] : 0;
  const tr = el('tr', { 'data-component': c.id, 'data-kind': c.kind });
  tr.append(
    el('td', { class: 'name', text: c.id }),
    el('td', { class: 'chart' }, spark(series, points, c.kind)),
    el('td', { class: 'num now', text: short(now), title: String(now) + ' per second, last sample' }),
    el('td', { class: 'num avg', text: short(c.rates[field]), title: 'average over the window shown' }),
    el('td', { class: 'num total', 'data-value': String(c.totals[field]), text: exact(c.totals[field]) }),
    el('td', { class: 'num bad' + (c.totals.bad > 0 ? ' warn' : ''), 'data-value': String(c.totals.bad), text: exact(c.totals.bad) }),
    el('td', { class: 'num dropped' + (c.totals.dropped > 0 ? ' warn' : ''), 'data-value': String(c.totals.dropped), text: exact(c.totals.dropped) }),
  );
  return tr;
}

function renderThroughput(st) {
  const points = Math.max(2, Math.round((st.ringPoints || 30)));
  const fronts = st.components.filter((c) => c.kind === 'frontend');
  const sinks = st.components.filter((c) => c.kind === 'sink');
  replaceRows($('tp-frontends'), fronts.length ? fronts.map((c) => throughputRow(c, 'received', points)) : [el('tr', {}, el('td', { colspan: '7', class: 'empty', text: 'No front-ends.' }))]);
  replaceRows($('tp-sinks'), sinks.length ? sinks.map((c) => throughputRow(c, 'sent', points)) : [el('tr', {}, el('td', { colspan: '7', class: 'empty', text: 'No sinks.' }))]);
}

function renderSinks(st) {
  const rows = st.sinks.map((s) => {
    const tr = el('tr', { 'data-sink': s.name, class: 'sink-' + s.state });
    const err = s.lastError;
    tr.append(
      el('td', { class: 'name', text: s.name }),
      el('td', {}, el('span', { class: 'state state-' + s.state, text: s.state })),
      el('td', { class: 'queue' }, meter(s.queueFill, s.queueFill >= 1 ? 'bad' : s.queueFill >= 0.5 ? 'warn' : ''), el('span', { class: 'num queue-depth', text: s.queueDepth + ' / ' + s.maxBatches })),
      s.retryBufferMaxBytes > 0
        ? el('td', { class: 'retry' }, meter(s.retryBufferFill, s.retryBufferFill >= 0.9 ? 'bad' : s.retryBufferFill >= 0.5 ? 'warn' : ''), el('span', { class: 'num retry-bytes', text: bytes(s.retryBufferBytes) + ' / ' + bytes(s.retryBufferMaxBytes) }))
        : el('td', { class: 'retry muted', text: 'none' }),
      el('td', { class: 'last-ok', text: ago(s.lastSuccessMs, st.nowMs) }),
      el('td', { class: 'last-error' }, err ? el('span', {}, el('code', { text: err.code }), ' ' + err.message + ' ', el('span', { class: 'muted', text: '(' + ago(err.atMs, st.nowMs) + ')' })) : el('span', { class: 'muted', text: '—' })),
    );
    return tr;
  });
  replaceRows($('sinks-body'), rows.length ? rows : [el('tr', {}, el('td', { colspan: '6', class: 'empty', text: 'No sinks configured.' }))]);
}

function renderDrops(st) {
  const drops = st.drops.filter((d) => d.total > 0);
  let worst = -1;
  drops.forEach((d, i) => {
    const w = drops[worst];
    if (w === undefined || d.recent > w.recent || (d.recent === w.recent && d.total > w.total)) worst = i;
  });
  const span = Math.round((st.spanMs || 0) / 1000);
  $('drops-span').textContent = span + ' s';
  const rows = drops.map((d, i) => el('tr', { class: i === worst ? 'worst' : '', 'data-component': d.component, 'data-reason': d.reason },
    el('td', { class: 'name', text: d.component }),
    el('td', {}, el('code', { text: d.reason }), i === worst ? el('span', { class: 'tag-worst', text: 'worst' }) : null),
    el('td', { class: 'num recent', 'data-value': String(d.recent), text: exact(d.recent) }),
    el('td', { class: 'num', text: short(d.perSecond) }),
    el('td', { class: 'num total', 'data-value': String(d.total), text: exact(d.total) }),
  ));
  replaceRows($('drops-body'), rows.length ? rows : [el('tr', {}, el('td', { colspan: '5', class: 'empty ok', text: 'Nothing dropped.' }))]);
}

function renderHeader(st) {
  $('version').textContent = 'v' + st.version;
  const r = st.readiness;
  const badge = $('ready');
  badge.textContent = r.ready ? 'ready' : 'not ready';
  badge.className = 'badge ' + (r.ready ? 'ok' : 'bad');
  $('problems').replaceChildren(...r.problems.map((p) => el('li', { text: p })));
  $('uptime').textContent = duration(st.uptimeSeconds);
  $('listeners').textContent = st.listeners.join('  ') || '—';
  $('live-contexts').textContent = exact(st.liveContexts);
  $('rss').textContent = bytes(st.process.rssBytes);
  const p99 = st.process.eventLoopDelayP99Ms;
  $('loop').textContent = typeof p99 === 'number' ? p99.toFixed(1) + ' ms' : '—';
  $('updated').textContent = 'updated ' + new Date(st.nowMs).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
}

let last;
function render(st) {
  last = st;
  renderHeader(st);
  renderThroughput(st);
  renderSinks(st);
  renderDrops(st);
  document.body.dataset.updates = String(Number(document.body.dataset.updates || '0') + 1);
}

function renderContexts(body) {
  const rep = body.report;
  const by = body.query.by;
  $('ctx-summary').textContent = exact(rep.liveContexts) + ' live contexts' + (typeof rep.maxContexts === 'number' ? ' of ' + exact(rep.maxContexts) + ' allowed' : '') + ', ' + exact(rep.names) + ' names' + (rep.truncated ? ' (scan truncated: lower bounds)' : '');
  const max = Math.max(1, ...rep.entries.map((e) => e[by]));
  const rows = rep.entries.map((e) => {
    const keys = (e.tagKeys || []).slice(0, 3);
    return el('tr', { 'data-name': e.name },
      el('td', { class: 'name' }, el('code', { text: e.name })),
      el('td', { class: 'num contexts', 'data-value': String(e.contexts), text: exact(e.contexts) }),
      el('td', { class: 'num samples', 'data-value': String(e.samples), text: exact(e.samples) }),
      el('td', { class: 'share' }, meter(e[by] / max, '')),
      el('td', { class: 'keys' }, ...keys.map((k, i) => el('span', { class: 'key' + (i === 0 ? ' top' : ''), text: k.key + ' ×' + exact(k.values) }))),
      el('td', { class: 'examples' }, ...e.examples.map((tags) => el('code', { class: 'example', text: tags.length ? tags.join(',') : '(no tags)' }))),
    );
  });
  replaceRows($('ctx-body'), rows.length ? rows : [el('tr', {}, el('td', { colspan: '6', class: 'empty', text: 'No live contexts.' }))]);
}

let ctxTimer;
async function loadContexts() {
  clearTimeout(ctxTimer);
  try {
    const res = await fetch('api/contexts?top=20&examples=3&by=' + encodeURIComponent($('ctx-by').value), { cache: 'no-store' });
    const body = await res.json();
    if (res.ok) { renderContexts(body); $('ctx-error').textContent = ''; }
    else $('ctx-error').textContent = (body.error && body.error.message) || ('HTTP ' + res.status);
  } catch (e) {
    $('ctx-error').textContent = 'contexts unavailable: ' + e.message;
  }
  ctxTimer = setTimeout(loadContexts, CONTEXTS_MS);
}

function setConn(text, cls) {
  const c = $('conn');
  c.textContent = text;
  c.className = 'conn ' + cls;
}

let pollTimer;
async function poll() {
  try {
    const res = await fetch('api/status', { cache: 'no-store' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    render(await res.json());
    setConn('live (polling)', 'ok');
  } catch (e) {
    setConn('disconnected: ' + e.message, 'bad');
  }
  pollTimer = setTimeout(poll, POLL_MS);
}

function stream() {
  if (typeof EventSource !== 'function') return poll();
  const es = new EventSource('api/events');
  es.addEventListener('status', (ev) => {
    render(JSON.parse(ev.data));
    setConn('live', 'ok');
  });
  es.onerror = () => {
    // A refused stream (e.g. too many open) closes for good: fall back to polling.
    if (es.readyState === EventSource.CLOSED) { es.close(); poll(); }
    else setConn('reconnecting…', 'warn');
  };
}

$('ctx-by').addEventListener('change', loadContexts);
stream();
loadContexts();
`;
