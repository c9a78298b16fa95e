import { request as httpRequest, type IncomingMessage } from 'node:http';
import t from 'tap';
import { Aggregator, componentContext, silentLogger } from '@metrics-distributor/core';
import { parseTapQuery } from '../src/tap.js';
import { FakeSources, startServer } from './helpers.js';

/** Opens /api/tap and collects its NDJSON lines; resolves once the first (`tap`) line arrived. */
function openTap(url: string): Promise<{ res: IncomingMessage; lines: Record<string, unknown>[]; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, (res) => {
      const lines: Record<string, unknown>[] = [];
      let buf = '';
      let first = true;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
          buf = buf.slice(nl + 1);
        }
        if (first && lines.length > 0) {
          first = false;
          resolve({ res, lines, close: () => req.destroy() });
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('query parsing', async (t) => {
  t.same(parseTapQuery({}), { ok: true, filter: { match: '*', types: [], maxPerSecond: 100 } });
  t.same(parseTapQuery({ match: 'api.*', type: 'c,ms', rate: '5000' }), { ok: true, filter: { match: 'api.*', types: ['c', 'ms'], maxPerSecond: 1000 } });
  t.match(parseTapQuery({ type: 'c,x' }), { ok: false, message: /unknown type "x"/ });
  t.match(parseTapQuery({ rate: '0' }), { ok: false });
  t.match(parseTapQuery({ nope: '1' }), { ok: false, message: /unknown parameter/ });
});

t.test('GET /api/tap streams the matching samples and what it skipped', async (t) => {
  const agg = new Aggregator({ selfMetrics: false });
  const rx = agg.target(componentContext({ logger: silentLogger(), stats: agg.stats }, 'statsd-udp'));
  const src = new FakeSources();
  src.tap = agg.tap;
  const { url, server } = await startServer(t, src);
  const tap = await openTap(`${url}/api/tap?match=api.*&type=c&rate=4`);
  t.equal(tap.res.statusCode, 200);
  t.equal(tap.res.headers['content-type'], 'application/x-ndjson; charset=utf-8');
  t.same(tap.lines[0], { tap: { match: 'api.*', types: ['c'], maxPerSecond: 4 } });
  t.equal(agg.tap.active, true);
  rx.statsd(Buffer.from('api.hits:3|c|#env:prod\napi.lat:5|ms\nother:1|c\napi.more:1|c\napi.more:2|c'));
  await wait(600);
  const samples = tap.lines.filter((l) => 'sample' in l).map((l) => l.sample as Record<string, unknown>);
  t.match(samples, [{ component: 'statsd-udp', name: 'api.hits', type: 'c', values: [3], tags: ['env:prod'], sampleRate: 1 }], 'one per tick at 4/s');
  t.equal(samples.length, 1);
  t.same(tap.lines.filter((l) => 'skipped' in l), [{ skipped: 2 }]);
  // A second stream is allowed, a third is refused.
  const second = await openTap(`${url}/api/tap`);
  const third = await fetch(`${url}/api/tap`);
  t.equal(third.status, 503);
  t.match(await third.json(), { error: { code: 'MD_ERR_ADMIN_BUSY' } });
  second.close();
  tap.close();
  await wait(100);
  t.equal(agg.tap.active, false, 'the tap goes idle once every stream is gone');
  const again = await openTap(`${url}/api/tap`);
  await server.close();
  t.equal(agg.tap.active, false, 'close() ends open streams');
  again.close();
});

t.test('GET /api/tap without a tap, and with a bad query', async (t) => {
  const src = new FakeSources();
  const { url } = await startServer(t, src);
  const none = await fetch(`${url}/api/tap`);
  t.equal(none.status, 404);
  src.tap = new Aggregator({ selfMetrics: false }).tap;
  const bad = await fetch(`${url}/api/tap?type=zz`);
  t.equal(bad.status, 400);
  t.match(await bad.json(), { error: { code: 'MD_ERR_ADMIN_BAD_REQUEST', message: /unknown type/ } });
});
