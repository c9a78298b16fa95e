import t from 'tap';
import { MAX_EXAMPLES, MAX_TOP, parseContextsQuery, type TopContextsReport } from '../src/index.js';
import { ContextsExplorer } from '../src/contexts.js';
import { FakeSources } from './helpers.js';

t.test('parseContextsQuery: defaults, clamping and clear errors', async (t) => {
  t.same(parseContextsQuery({}), { ok: true, query: { top: 50, by: 'contexts', examples: 3 }, clamped: false });
  t.same(parseContextsQuery({ top: '10', by: 'samples', examples: '0' }), { ok: true, query: { top: 10, by: 'samples', examples: 0 }, clamped: false });
  t.same(parseContextsQuery({ top: '100000', examples: '99' }), { ok: true, query: { top: MAX_TOP, by: 'contexts', examples: MAX_EXAMPLES }, clamped: true });
  t.same(parseContextsQuery({ top: '0' }), { ok: true, query: { top: 1, by: 'contexts', examples: 3 }, clamped: true });
  for (const [q, msg] of [
    [{ top: 'ten' }, /top must be a non-negative integer, got "ten"/],
    [{ top: '-1' }, /top must be/],
    [{ top: '1.5' }, /top must be/],
    [{ top: '99999999999' }, /top must be/],
    [{ top: ['1', '2'] }, /top must be/],
    [{ examples: 'x' }, /examples must be/],
    [{ by: 'bytes' }, /by must be "contexts" or "samples", got "bytes"/],
    [{ tpo: '5' }, /unknown parameter "tpo"; accepted: top, by, examples/],
  ] as const) {
    const r = parseContextsQuery(q);
    t.equal(r.ok, false, JSON.stringify(q));
    if (!r.ok) t.match(r.message, msg);
  }
});

const REPORT: TopContextsReport = { windowStartMs: 1, liveContexts: 3, maxContexts: 10, names: 1, entries: [{ name: 'a', contexts: 3, samples: 9, examples: [['k:v']] }], truncated: false };

t.test('the explorer caches an answer for a tick, joins identical calls and refuses a second question', async (t) => {
  const src = new FakeSources();
  let now = 1000;
  let release: (r: TopContextsReport) => void = () => undefined;
  src.topImpl = () => new Promise<TopContextsReport>((resolve) => (release = resolve));
  const ex = new ContextsExplorer(src, 5000, 1000, () => now);
  const q = { top: 5, by: 'contexts', examples: 1 } as const;
  const a = ex.query(q);
  const b = ex.query(q);
  const other = await ex.query({ ...q, by: 'samples' });
  t.match(other, { ok: false, code: 'MD_ERR_ADMIN_BUSY' });
  release(REPORT);
  t.match(await a, { ok: true, cached: false, report: REPORT });
  t.match(await b, { ok: true, cached: false });
  t.equal(src.questions.length, 1, 'one scan for two identical requests');
  now += 500;
  t.match(await ex.query(q), { ok: true, cached: true });
  t.equal(src.questions.length, 1);
  now += 600;
  src.topImpl = () => REPORT;
  t.match(await ex.query(q), { ok: true, cached: false });
  t.equal(src.questions.length, 2);
});

t.test('a slow source times out, and no new scan starts until it settles', async (t) => {
  const src = new FakeSources();
  let release: (r: TopContextsReport) => void = () => undefined;
  src.topImpl = () => new Promise<TopContextsReport>((resolve) => (release = resolve));
  const ex = new ContextsExplorer(src, 20, 0);
  t.match(await ex.query({ top: 1, by: 'contexts', examples: 0 }), { ok: false, code: 'MD_ERR_ADMIN_TIMEOUT', message: /longer than 20 ms/ });
  t.match(await ex.query({ top: 1, by: 'contexts', examples: 0 }), { ok: false, code: 'MD_ERR_ADMIN_BUSY', message: /still running/ });
  release(REPORT);
  await new Promise((r) => setTimeout(r, 5));
  src.topImpl = () => REPORT;
  t.match(await ex.query({ top: 1, by: 'contexts', examples: 0 }), { ok: true });
});

t.test('a throwing source is a value, not an exception', async (t) => {
  const src = new FakeSources();
  src.topImpl = () => {
    throw new Error('boom');
  };
  const ex = new ContextsExplorer(src, 1000, 0);
  const r = await ex.query({ top: 1, by: 'contexts', examples: 0 });
  t.match(r, { ok: false, code: 'MD_ERR_ADMIN_SOURCE' });
  if (!r.ok) t.match(r.cause, { message: 'boom' });
});
