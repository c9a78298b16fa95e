import t from 'tap';
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { BodyError, decodeBody, detectFormat, forEachRecord, type BadRecordReason, type BodyFormat, type LogRecord } from '../src/body.js';
import { fixture } from './helpers.js';

/** The BodyError kind a decode fails with, or 'ok'. */
async function failure(p: Promise<Buffer>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof BodyError ? err.kind : `other: ${String(err)}`;
  }
}

t.test('decodeBody: identity, gzip, x-gzip, deflate (zlib and raw), stacked codings', async (t) => {
  const text = Buffer.from('count#a=1\n');
  t.equal(await decodeBody(text, undefined, 100), text, 'no Content-Encoding: the same buffer');
  t.same(await decodeBody(text, 'identity', 100), text);
  t.same(await decodeBody(gzipSync(text), 'gzip', 100), text);
  t.same(await decodeBody(gzipSync(text), 'X-GZIP', 100), text);
  t.same(await decodeBody(deflateSync(text), 'deflate', 100), text);
  t.same(await decodeBody(deflateRawSync(text), 'deflate', 100), text, 'raw deflate, as some clients send it');
  t.same(await decodeBody(gzipSync(deflateSync(text)), 'deflate, gzip', 100), text, 'codings are undone last first');
});

t.test('decodeBody: the cap applies to the output; exactly the cap is fine', async (t) => {
  t.equal((await decodeBody(gzipSync(Buffer.alloc(100)), 'gzip', 100)).length, 100);
  t.equal(await failure(decodeBody(gzipSync(Buffer.alloc(101)), 'gzip', 100)), 'too_large');
  t.equal(await failure(decodeBody(deflateSync(Buffer.alloc(101)), 'deflate', 100)), 'too_large', 'deflate too, without a raw-deflate retry');
});

t.test('decodeBody: a gzip bomb (50 MB of zeros) stops at the cap without inflating it all', async (t) => {
  const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024));
  t.ok(bomb.length < 100 * 1024, `the bomb is small on the wire (${bomb.length} bytes)`);
  const before = process.memoryUsage().arrayBuffers;
  const err = await decodeBody(bomb, 'gzip', 5 * 1024 * 1024).catch((e: unknown) => e);
  t.ok(err instanceof BodyError);
  t.equal((err as BodyError).kind, 'too_large');
  t.ok(process.memoryUsage().arrayBuffers - before < 40 * 1024 * 1024, 'far less than 50 MB was allocated');
});

t.test('decodeBody: unsupported and corrupt encodings', async (t) => {
  t.equal(await failure(decodeBody(Buffer.from('x'), 'br', 100)), 'unsupported_encoding');
  t.equal(await failure(decodeBody(Buffer.from('x'), 'snappy', 100)), 'unsupported_encoding');
  t.equal(await failure(decodeBody(Buffer.from('not gzip at all'), 'gzip', 100)), 'corrupt');
  t.equal(await failure(decodeBody(Buffer.from([0xff, 0xff, 0xff]), 'deflate', 100)), 'corrupt');
});

t.test('detectFormat: by Content-Type, and sniffing where senders mislabel', async (t) => {
  const logplex = fixture('dd_router_1msg.logplex');
  const cases: [string | undefined, Buffer | string, BodyFormat][] = [
    ['application/logplex-1', logplex, 'logplex'],
    ['application/logplex-1', 'anything', 'logplex'],
    ['application/x-ndjson', '{"a":1}', 'ndjson'],
    ['application/jsonl', '{"a":1}', 'ndjson'],
    ['application/json', ' [{"a":1}]', 'json'],
    ['application/json; charset=utf-8', '{"a":1}\n{"a":2}', 'ndjson'],
    ['text/plain', 'count#a=1', 'text'],
    ['text/plain; charset=utf-8', logplex, 'logplex'],
    ['text/plain', '<0>1 2021-03-31T16:00:00-08:00 h a p m - x', 'text'],
    [undefined, logplex, 'logplex'],
    [undefined, '[1]', 'json'],
    ['application/octet-stream', '{"a":1}', 'ndjson'],
    [undefined, 'count#a=1', 'text'],
    [undefined, '', 'text'],
  ];
  for (const [ct, body, want] of cases) t.equal(detectFormat(ct, Buffer.from(body)), want, `${String(ct)} ${String(body).slice(0, 20)}`);
});

/** Everything the visitor saw, in order. */
function records(body: Buffer | string, format: BodyFormat, max = 10240) {
  const out: (LogRecord | [BadRecordReason, string] | number)[] = [];
  forEachRecord(typeof body === 'string' ? Buffer.from(body) : body, format, max, {
    record: (r) => out.push(r),
    bad: (reason, sample) => out.push([reason, sample]),
    tooLarge: (bytes) => out.push(bytes),
  });
  return out;
}

t.test('forEachRecord logplex: frames become records with app, proc and timestamp', async (t) => {
  t.same(records(fixture('heroku_devcenter_2msg.logplex'), 'logplex'), [
    { appName: 'app', procId: 'web.3', msg: 'State changed from starting to up', timestampMs: Date.UTC(2012, 10, 30, 6, 45, 29) },
    { appName: 'app', procId: 'web.3', msg: 'Starting process with command `bundle exec rackup config.ru -p 24405`', timestampMs: Date.UTC(2012, 10, 30, 6, 45, 26) },
  ]);
  const nosep = records(fixture('logplex_input_10msg_nosep.logplex'), 'logplex') as LogRecord[];
  t.equal(nosep.length, 10);
  t.equal(nosep[0]!.timestampMs, undefined, 'the malformed `…Z+00:00` stamp falls back to receive time');
});

t.test('forEachRecord logplex: bad frames and junk are counted; bare syslog lines in junk are used', async (t) => {
  const good = '<190>1 2013-07-22T00:06:26+00:00 host app web.1 - count#a=1';
  const badHeader = '<190>1 2013-07-22T00:06:26+00:00 host app';
  const body = `${Buffer.byteLength(badHeader)} ${badHeader}\nwhat am i doing here\n${good}\n${Buffer.byteLength(good)} ${good}`;
  t.same(records(body, 'logplex'), [
    ['bad_syslog', badHeader],
    ['bad_frame', 'what am i doing here'],
    { appName: 'app', procId: 'web.1', msg: 'count#a=1', timestampMs: Date.UTC(2013, 6, 22, 0, 6, 26) },
    { appName: 'app', procId: 'web.1', msg: 'count#a=1', timestampMs: Date.UTC(2013, 6, 22, 0, 6, 26) },
  ]);
});

t.test('forEachRecord logplex: a frame over the limit is skipped and the next one still parsed', async (t) => {
  const big = `<190>1 2013-07-22T00:06:26+00:00 host app web.1 - ${'x'.repeat(200)}`;
  const small = '<190>1 2013-07-22T00:06:26+00:00 host app web.1 - count#a=1';
  const out = records(`${big.length} ${big}${small.length} ${small}`, 'logplex', 100);
  t.same(out.length, 2);
  t.equal(out[0], big.length);
  t.match(out[1], { msg: 'count#a=1' });
});

t.test('forEachRecord text: one line per LF, CRLF, blank lines, bare RFC 5424 lines, long lines', async (t) => {
  t.same(records(fixture('plain_text_3lines.txt'), 'text'), [
    { appName: undefined, procId: undefined, msg: 'count#user.clicks=4', timestampMs: undefined },
    { appName: undefined, procId: undefined, msg: 'sample#database.size=40.9MB', timestampMs: undefined },
    { appName: undefined, procId: undefined, msg: 'measure#database.query=200ms', timestampMs: undefined },
  ]);
  t.same(records(fixture('syslog5424_newline_1msg.txt'), 'text'), [{ appName: 'cron-12345', procId: '74440', msg: 'hello this is a test', timestampMs: Date.UTC(2021, 3, 1) }]);
  t.same(records('a\r\n\r\n  \nb', 'text').map((r) => (r as LogRecord).msg), ['a', 'b']);
  t.same(records(`<1>broken\n${'y'.repeat(20)}\nok`, 'text', 10), [['bad_syslog', '<1>broken'], 20, { appName: undefined, procId: undefined, msg: 'ok', timestampMs: undefined }]);
});

t.test('forEachRecord ndjson and json: message field, timestamps, bad objects', async (t) => {
  const vercel = records(fixture('vercel_2msg.ndjson'), 'ndjson') as LogRecord[];
  t.same(
    vercel.map((r) => [r.msg, r.timestampMs]),
    [
      ['Build completed successfully', 1573817187330],
      ['API request processed', 1573817250283],
    ],
  );
  t.same(records(fixture('vercel_2msg.json'), 'json'), vercel, 'the array form gives the same records');
  const fly = records(fixture('fly_3msg.ndjson'), 'ndjson') as LogRecord[];
  t.same(
    fly.map((r) => [r.msg, r.timestampMs]),
    [
      ['subprocess exited, litestream shutting down', Date.UTC(2022, 8, 27, 20, 34, 37, 252)],
      ['litestream shut down', Date.UTC(2022, 8, 27, 20, 34, 37, 253)],
      ['machine exited with exit code 0, not restarting', Date.UTC(2022, 8, 27, 20, 34, 39, 660)],
    ],
  );
  t.same(records(fixture('fly_3msg_vector_http_sink.json'), 'json'), fly);
  t.same(records('{"msg":"count#a=1","timestamp":1700000000}\n{"level":"info"}\nnot json\n[1]\n', 'ndjson'), [
    { appName: undefined, procId: undefined, msg: 'count#a=1', timestampMs: 1700000000000 },
    { appName: undefined, procId: undefined, msg: '', timestampMs: undefined },
    ['bad_json', 'not json'],
    ['bad_json', '[1]'],
  ]);
  t.same(records('[{"message":"a"}, 7, null]', 'json'), [{ appName: undefined, procId: undefined, msg: 'a', timestampMs: undefined }, ['bad_json', '7'], ['bad_json', 'null']]);
  t.same(records('[{"message":"a"', 'json'), [['bad_json', '[{"message":"a"']], 'a truncated array is one bad record');
  t.same(records('{"message":"aaaaaaaaaaaa"}', 'json', 10), [12], 'a single object; a message over the limit');
});
