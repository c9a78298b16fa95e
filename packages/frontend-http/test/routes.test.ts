import t from 'tap';
import { createHmac } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { basic, c, entry, fixture, flat, g, setup } from './helpers.js';

const LINE = '<190>1 2013-07-22T00:06:26+00:00 host app web.1 - count#hits=1';
const BODY = `${LINE.length + 1} ${LINE}\n`;
const LOGPLEX = { 'content-type': 'application/logplex-1' };

t.test('auth: none configured on loopback accepts; configured: missing and wrong get 401, right gets 200', async (t) => {
  const open = setup(t);
  t.equal((await open.fe.server.inject({ method: 'POST', url: '/logs', headers: LOGPLEX, payload: BODY })).statusCode, 200);

  const { agg, fe, stats } = setup(t, { credentials: [{ user: 'user', password: 'pass' }] });
  const post = (authorization?: string) => fe.server.inject({ method: 'POST', url: '/logs', headers: { ...LOGPLEX, ...(authorization ? { authorization } : {}) }, payload: BODY });
  const none = await post();
  t.equal(none.statusCode, 401);
  t.equal(none.headers['www-authenticate'], 'Basic realm="metrics-distributor"');
  t.equal(none.headers['connection'], 'close', 'the unread body is not waited for');
  t.equal((await post(basic('user:wrong'))).statusCode, 401);
  t.equal((await post(basic('wrong:pass'))).statusCode, 401);
  t.equal((await post('Bearer pass')).statusCode, 401);
  t.equal((await post(basic('user:pass'))).statusCode, 200);
  t.equal(stats.dropped('unauthorized'), 4);
  t.equal(stats.received, 1, 'only the authorised body was read');
  t.same(flat(agg.closeWindow()), [c('hits', 1, [])]);
});

t.test('auth: 401 is sent without reading the body (a body that never ends still gets its answer)', async (t) => {
  const { fe } = setup(t, { credentials: [{ user: 'user', password: 'pass' }] });
  const never = new PassThrough();
  never.write('123 <190>1 partial');
  const res = await fe.server.inject({ method: 'POST', url: '/logs', headers: { ...LOGPLEX, 'content-length': '1000000' }, payload: never });
  t.equal(res.statusCode, 401);
  never.destroy();
});

t.test('auth: token@ and :password forms; the credential app wins over ?app=', async (t) => {
  const { agg, fe } = setup(t, { credentials: [{ user: 'long-token', app: 'billing' }, { password: 'secret' }] });
  const post = (authorization: string, url = '/logs?app=shop') => fe.server.inject({ method: 'POST', url, headers: { ...LOGPLEX, authorization }, payload: BODY });
  t.equal((await post(basic('long-token'))).statusCode, 200);
  t.equal((await post(basic('long-token:'))).statusCode, 200);
  t.equal((await post(basic(':secret'))).statusCode, 200);
  t.equal((await post(basic(':secret'), '/logs?app=bad%20app')).statusCode, 200, 'an invalid ?app= is ignored, not an error');
  t.same(flat(agg.closeWindow()), [c('hits', 2, ['app:billing']), c('hits', 1, ['app:shop']), c('hits', 1, [])].sort());
});

t.test('credentials never appear in logs, even at trace', async (t) => {
  const { fe, log } = setup(t, { credentials: [{ user: 'user', password: 'hunter2-secret' }] }, 'trace');
  await fe.server.inject({ method: 'POST', url: '/logs', headers: { ...LOGPLEX, authorization: basic('user:hunter2-secret') }, payload: BODY });
  await fe.server.inject({ method: 'POST', url: '/logs', headers: { ...LOGPLEX, authorization: basic('user:hunter2-wrong') }, payload: BODY });
  t.ok(log.lines.length > 0, 'something was logged');
  const text = log.text();
  for (const secret of ['hunter2', Buffer.from('user:hunter2-secret').toString('base64'), Buffer.from('user:hunter2-wrong').toString('base64'), 'authorization']) {
    t.notOk(text.includes(secret), `no ${secret} in the logs`);
  }
  t.ok(log.lines.every((l) => l.level <= 20), 'per-request lines are debug at most');
});

t.test('Vercel: a good signature is accepted, a bad one gets 403 and nothing is counted', async (t) => {
  const { agg, fe, stats } = setup(t, { vercelSecret: 'test-secret' });
  const good = entry('vercel_2msg.ndjson');
  t.equal((await fe.server.inject({ method: 'POST', url: '/logs', headers: good.headers, payload: fixture(good.file) })).statusCode, 200);
  const bad = await fe.server.inject({ method: 'POST', url: '/logs', headers: entry('vercel_2msg_badsig.ndjson').headers, payload: fixture('vercel_2msg_badsig.ndjson') });
  t.equal(bad.statusCode, 403);
  t.same(bad.json(), { error: 'invalid_signature' });
  const tampered = await fe.server.inject({ method: 'POST', url: '/logs', headers: good.headers, payload: Buffer.concat([fixture(good.file), Buffer.from('{"message":"count#x=1"}\n')]) });
  t.equal(tampered.statusCode, 403, 'the good signature of another body');
  t.equal(stats.received, 2);
  t.equal(stats.dropped('bad_signature'), 2);
  t.same(flat(agg.closeWindow()), []);
});

t.test('Vercel: the signature covers the raw (gzipped) bytes and stands in for Basic credentials', async (t) => {
  const { agg, fe } = setup(t, { vercelSecret: 's3cret', credentials: [{ user: 'user', password: 'pass' }] });
  const raw = gzipSync('{"message":"count#deploys=1"}\n');
  const sig = createHmac('sha1', 's3cret').update(raw).digest('hex');
  const headers = { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' };
  t.equal((await fe.server.inject({ method: 'POST', url: '/logs', headers: { ...headers, 'x-vercel-signature': sig }, payload: raw })).statusCode, 200);
  t.equal((await fe.server.inject({ method: 'POST', url: '/logs', headers: { ...headers, 'x-vercel-signature': '0'.repeat(40) }, payload: raw })).statusCode, 403);
  t.equal((await fe.server.inject({ method: 'POST', url: '/logs', headers, payload: raw })).statusCode, 401, 'neither signature nor credentials');
  const both = await fe.server.inject({ method: 'POST', url: '/logs', headers: { ...headers, authorization: basic('user:pass'), 'x-vercel-signature': '0'.repeat(40) }, payload: raw });
  t.equal(both.statusCode, 403, 'good credentials do not excuse a bad signature');
  t.same(flat(agg.closeWindow()), [c('deploys', 1, [])]);
});

t.test('size: a declared oversize body gets 413 before it is read; a streamed one as soon as it passes the limit', async (t) => {
  const { agg, fe, stats } = setup(t, { maxBodyBytes: 1000 });
  const big = Buffer.alloc(1001, 'a');
  const declared = await fe.server.inject({ method: 'POST', url: '/logs', headers: LOGPLEX, payload: big });
  t.equal(declared.statusCode, 413);
  t.equal(declared.headers['connection'], 'close');
  const stream = new PassThrough();
  stream.write(Buffer.alloc(600, 'a'));
  stream.write(Buffer.alloc(600, 'a'));
  // Never ended: the 413 must not wait for the end of an oversize body.
  const streamed = await fe.server.inject({ method: 'POST', url: '/logs', headers: { ...LOGPLEX, 'transfer-encoding': 'chunked' }, payload: stream });
  t.equal(streamed.statusCode, 413);
  stream.destroy();
  t.equal((await fe.server.inject({ method: 'POST', url: '/logs', headers: LOGPLEX, payload: Buffer.alloc(1000, ' ') })).statusCode, 200, 'exactly the limit is fine');
  t.equal(stats.dropped('body_too_large'), 2);
  t.same(flat(agg.closeWindow()), []);
});

t.test('size: the limit applies after decompression too; a 50 MB gzip bomb gets 413', async (t) => {
  const { fe, stats } = setup(t);
  const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024));
  const res = await fe.server.inject({ method: 'POST', url: '/logs', headers: { ...LOGPLEX, 'content-encoding': 'gzip' }, payload: bomb });
  t.equal(res.statusCode, 413);
  t.equal(stats.dropped('body_too_large'), 1);
  t.equal(stats.received, 0);
  const small = setup(t, { maxBodyBytes: 2000 });
  const just = (n: number) => small.fe.server.inject({ method: 'POST', url: '/logs', headers: { 'content-type': 'text/plain', 'content-encoding': 'gzip' }, payload: gzipSync(`count#z=1\n${' '.repeat(n - 10)}`) });
  t.equal((await just(2000)).statusCode, 200);
  t.equal((await just(2001)).statusCode, 413);
});

t.test('encodings: gzip and deflate accepted, unknown 415, corrupt 400', async (t) => {
  const { agg, fe, stats } = setup(t);
  const post = (encoding: string, payload: Buffer) => fe.server.inject({ method: 'POST', url: '/logs', headers: { 'content-type': 'text/plain', 'content-encoding': encoding }, payload });
  t.equal((await post('gzip', gzipSync('count#gz=1\n'))).statusCode, 200);
  t.equal((await post('br', Buffer.from('x'))).statusCode, 415);
  t.equal((await post('gzip', Buffer.from('not gzip'))).statusCode, 400);
  t.same([stats.dropped('unsupported_encoding'), stats.dropped('bad_encoding')], [1, 1]);
  t.same(flat(agg.closeWindow()), [c('gz', 1, [])]);
});

t.test('bad lines never cause a 4xx: garbage bodies are acknowledged and counted', async (t) => {
  const { fe, stats } = setup(t);
  for (const [ct, payload] of [
    ['application/logplex-1', 'trolllllll'],
    ['application/logplex-1', ''],
    ['application/json', '[{"message":'],
    ['application/x-ndjson', 'nope\n{}\n'],
    ['application/x-www-form-urlencoded', 'a=b'],
    ['image/png', Buffer.from([0x89, 0x50, 0x4e, 0x47])],
  ] as const) {
    const res = await fe.server.inject({ method: 'POST', url: '/logs', headers: { 'content-type': ct }, payload });
    t.equal(res.statusCode, 200, `${ct} ${String(payload).slice(0, 10)}`);
  }
  const noType = await fe.server.inject({ method: 'POST', url: '/logs', payload: 'count#x=1' });
  t.equal(noType.statusCode, 200, 'no Content-Type at all');
  t.equal(stats.bad, 3);
  t.equal(stats.packets, 7);
});

t.test('duplicates: the same drain token and frame id within the window is acknowledged, counted once', async (t) => {
  const { agg, fe, stats } = setup(t, { dedupeWindowMs: 200 });
  const post = (id: string, token = 'd.token-a', payload = BODY) => fe.server.inject({ method: 'POST', url: '/logs', headers: { ...LOGPLEX, 'logplex-frame-id': id, 'logplex-drain-token': token }, payload });
  t.equal((await post('F1')).statusCode, 200);
  t.equal((await post('F1')).statusCode, 200, 'the retry is acknowledged');
  // Logplex may prepend an L10 line to a retry: the id, not the body, decides.
  t.equal((await post('F1', 'd.token-a', `${BODY}99 <172>1 2025-03-18T07:44:02+00:00 host heroku logplex - Error L10 (output buffer overflow): 5 messages dropped`)).statusCode, 200);
  t.equal((await post('F1', 'd.token-b')).statusCode, 200, 'same id from another drain');
  t.equal((await post('F2')).statusCode, 200);
  const never = new PassThrough();
  never.write('1');
  const unread = await fe.server.inject({ method: 'POST', url: '/logs', headers: { ...LOGPLEX, 'logplex-frame-id': 'F1', 'logplex-drain-token': 'd.token-a', 'content-length': '5000' }, payload: never });
  t.equal(unread.statusCode, 200, 'a known retry is acknowledged before its body is read');
  never.destroy();
  t.equal(stats.dropped('duplicate'), 3);
  t.same(flat(agg.closeWindow()), [c('hits', 3, [])]);
  await new Promise((r) => setTimeout(r, 250));
  await post('F1');
  t.same(flat(agg.closeWindow()), [c('hits', 1, [])], 'after the window the id is forgotten');
});

t.test('duplicates: a failed delivery is not remembered, so its retry counts', async (t) => {
  const { agg, fe } = setup(t, { maxBodyBytes: 200 });
  const headers = { ...LOGPLEX, 'logplex-frame-id': 'F9', 'logplex-drain-token': 'd.t' };
  t.equal((await fe.server.inject({ method: 'POST', url: '/logs', headers, payload: BODY + ' '.repeat(200) })).statusCode, 413);
  t.equal((await fe.server.inject({ method: 'POST', url: '/logs', headers, payload: BODY })).statusCode, 200);
  t.same(flat(agg.closeWindow()), [c('hits', 1, [])]);
});

t.test('duplicates: memory is bounded by dedupeMaxIds', async (t) => {
  const { agg, fe } = setup(t, { dedupeMaxIds: 1 });
  for (const id of ['A', 'B', 'A']) await fe.server.inject({ method: 'POST', url: '/logs', headers: { ...LOGPLEX, 'logplex-frame-id': id }, payload: BODY });
  t.same(flat(agg.closeWindow()), [c('hits', 3, [])], 'A was evicted by B, so its replay counts again');
});

t.test('Logplex-Msg-Count mismatch: still 200, counted as msg_count_mismatch', async (t) => {
  const { agg, fe } = setup(t);
  const res = await fe.server.inject({ method: 'POST', url: '/logs', headers: { ...LOGPLEX, 'logplex-msg-count': '3' }, payload: BODY });
  t.equal(res.statusCode, 200);
  t.equal(agg.stats.component('http').counter('msg_count_mismatch'), 1);
  await fe.server.inject({ method: 'POST', url: '/logs', headers: { ...LOGPLEX, 'logplex-msg-count': '1' }, payload: BODY });
  t.equal(agg.stats.component('http').counter('msg_count_mismatch'), 1, 'a matching count is not counted');
});

t.test('POST /statsd: raw StatsD lines through core, counted as http-statsd; auth and gzip apply', async (t) => {
  const { agg, fe, stats } = setup(t, { credentials: [{ user: 'u', password: 'p' }] });
  const authorization = basic('u:p');
  const res = await fe.server.inject({ method: 'POST', url: '/statsd', headers: { 'content-type': 'text/plain', authorization }, payload: 'page.views:1|c\npage.views:2|c|#env:prod\ntemp:21|g\nbad line' });
  t.equal(res.statusCode, 200);
  const gz = await fe.server.inject({ method: 'POST', url: '/statsd', headers: { authorization, 'content-encoding': 'gzip' }, payload: gzipSync('page.views:4|c') });
  t.equal(gz.statusCode, 200);
  t.equal((await fe.server.inject({ method: 'POST', url: '/statsd', payload: 'x:1|c' })).statusCode, 401);
  const st = agg.stats.component('http-statsd');
  t.same([st.packets, st.received, st.parsed, st.bad], [2, 5, 4, 1]);
  t.equal(stats.received, 0, 'the log counters are not touched');
  t.same(flat(agg.closeWindow()), [c('page.views', 5, []), c('page.views', 2, ['env:prod']), g('temp', 21, [])].sort());
});

t.test('GET /healthz is 200 without credentials; unknown routes are 404', async (t) => {
  const { fe } = setup(t, { credentials: [{ user: 'u', password: 'p' }] });
  const res = await fe.server.inject({ method: 'GET', url: '/healthz' });
  t.equal(res.statusCode, 200);
  t.same(res.json(), { status: 'ok' });
  t.equal((await fe.server.inject({ method: 'GET', url: '/logs' })).statusCode, 404);
  t.equal((await fe.server.inject({ method: 'POST', url: '/nope' })).statusCode, 404);
});

t.test('overload: beyond maxInflightRequests a POST gets 503 (logplex retries), and the slot is freed after', async (t) => {
  const { agg, fe, stats } = setup(t, { maxInflightRequests: 1 });
  const slow = new PassThrough();
  const first = fe.server.inject({ method: 'POST', url: '/logs', headers: { ...LOGPLEX, 'transfer-encoding': 'chunked' }, payload: slow });
  while (fe.inflight === 0) await new Promise((r) => setTimeout(r, 5));
  const second = await fe.server.inject({ method: 'POST', url: '/logs', headers: LOGPLEX, payload: BODY });
  t.equal(second.statusCode, 503);
  t.equal(second.headers['retry-after'], '5');
  t.equal(stats.dropped('overloaded'), 1);
  slow.end(BODY);
  t.equal((await first).statusCode, 200);
  t.equal(fe.inflight, 0);
  t.equal((await fe.server.inject({ method: 'POST', url: '/logs', headers: LOGPLEX, payload: BODY })).statusCode, 200);
  t.same(flat(agg.closeWindow()), [c('hits', 2, [])]);
});
