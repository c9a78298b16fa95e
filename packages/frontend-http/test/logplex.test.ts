import t from 'tap';
import { frameHeaderAt, parseRfc3339, parseSyslog, readFrames } from '../src/logplex.js';
import { fixture } from './helpers.js';

/** Frames and junk of a body, as strings. */
function split(body: Buffer | string): { frames: string[]; junk: string[] } {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  const frames: string[] = [];
  const junk: string[] = [];
  readFrames(buf, {
    frame: (s, e) => frames.push(buf.toString('utf8', s, e)),
    junk: (s, e) => junk.push(buf.toString('utf8', s, e)),
  });
  return { frames, junk };
}

/** `len(msg + suffix) SP msg suffix`: a correctly counted frame. */
function frame(msg: string, suffix = '\n', delta = 0): string {
  return `${Buffer.byteLength(msg + suffix) + delta} ${msg}${suffix}`;
}

const A = '<158>1 2020-01-08T22:33:57.353034+00:00 host heroku router - at=info status=200';
const B = '<134>1 2023-08-24T10:28:47.153192+00:00 host heroku web.1 - source=web.1 sample#memory_total=1MB';
const C = '<190>1 2013-07-22T00:06:26+00:00 host app web.1 - count#signups=1';

t.test('§1.6: the count includes the trailing LF and the LF is there (Heroku doc, logplex README)', async (t) => {
  t.same(split(frame(A) + frame(B)).frames, [A, B]);
  const devcenter = split(fixture('heroku_devcenter_2msg.logplex')).frames;
  t.equal(devcenter.length, 2);
  t.equal(devcenter[0], '<40>1 2012-11-30T06:45:29+00:00 host app web.3 - State changed from starting to up');
  t.match(devcenter[1], /-p 24405`$/, 'ends with the backtick, LF stripped');
});

t.test('§1.6: the count excludes the LF and frames are back to back (logplex http_input)', async (t) => {
  t.same(split(frame(A, '') + frame(B, '') + frame(C, '')).frames, [A, B, C]);
  const nosep = split(fixture('logplex_input_10msg_nosep.logplex')).frames;
  t.equal(nosep.length, 10);
  t.match(nosep[9], /Logsplat test message 10 from <0\.72\.0>\.$/);
});

t.test('§1.6: the count excludes the LF but the LF is there (add-on lines)', async (t) => {
  t.same(split(`${frame(A, '')}\n${frame(B, '')}\n`).frames, [A, B]);
});

t.test('§1.6: a short final frame (count includes an LF the body lacks: Vector, heroku_drain_datadog)', async (t) => {
  t.same(split(frame(A, '\n').slice(0, -1)).frames, [A]);
  t.same(split(frame(A) + frame(B, '\n').slice(0, -1)).frames, [A, B]);
  const vector = split(fixture('vector_router_1msg_truncated.logplex')).frames;
  t.equal(vector.length, 1);
  t.match(vector[0], /protocol=http$/);
});

t.test('§1.6: a count that is too long runs into the next frame: cut at the LF before it (Sumo load_avg 205 vs 201)', async (t) => {
  const r = split(frame(B, '\n', 4) + frame(A) + frame(C));
  t.same(r.frames, [B, A, C]);
  t.same(r.junk, []);
});

t.test('§1.6: a count that is too short: the frame runs on to the next boundary (l2met 88 vs 89, L10 162 vs 169)', async (t) => {
  const r = split(frame(A, '\n', -7) + frame(B));
  t.same(r.frames, [A, B], 'the 7 uncounted bytes stay in the first frame instead of becoming junk');
  const l10 = split(fixture('l2met_parser_L10.logplex')).frames;
  t.same(l10.length, 1);
  t.match(l10[0], /500 messages dropped since 2013-04-17T19:04:46\+00:00\.$/);
  const simple = split(fixture('l2met_parser_simple.logplex')).frames;
  t.same(simple, ['<174>1 2013-07-22T00:06:26-00:00 somehost name test - measure#hello=1 measure#world=1ms\\n'], 'the literal backslash-n stays part of the message');
});

t.test('§1.6: a count of characters instead of bytes (multi-byte UTF-8) is too short, and still parses', async (t) => {
  const msg = `${C} note="naïve café"`;
  const r = split(`${msg.length + 1} ${msg}\n${frame(A)}`);
  t.same(r.frames, [msg, A]);
});

t.test('§1.6: blank bytes between frames (SP, CR, LF) are skipped', async (t) => {
  t.same(split(`\r\n  ${frame(A)}\n\n \r\n${frame(B)}  \n`).frames, [A, B]);
});

t.test('§1.6: CRLF-terminated frames: one LF then one CR stripped', async (t) => {
  t.same(split(frame(A, '\r\n') + frame(B, '\r\n')).frames, [A, B]);
});

t.test('§1.6: a huge declared count on a short message is clamped to the body (Vector malformed test)', async (t) => {
  const msg = "<158>1 2020-01-08T22:33:57.353034+00:00 host heroku router - i'm not that long";
  t.same(split(`1000000 ${msg}`).frames, [msg]);
});

t.test('§1.6: garbage without a frame header is junk up to the next boundary; the rest of the body is used', async (t) => {
  const r = split(`what am i doing here\nmore junk\n${frame(A)}${frame(B)}`);
  t.same(r.junk, ['what am i doing here\nmore junk\n']);
  t.same(r.frames, [A, B]);
  const trailing = split(`${frame(A)}garbage at the end`);
  t.same(trailing.frames, [A], 'junk right after a frame with a correct count');
  t.same(trailing.junk, ['garbage at the end']);
  t.same(split('').frames, []);
  t.same(split('\n\n').frames, []);
});

t.test('§1.6: a digit run that is not followed by <PRI> is not a frame header', async (t) => {
  t.equal(frameHeaderAt(Buffer.from('12 <34>1 x'), 0)?.count, 12);
  t.same(frameHeaderAt(Buffer.from('12 <34>1 x'), 0)?.msgStart, 3);
  t.equal(frameHeaderAt(Buffer.from('12 hello'), 0), undefined);
  t.equal(frameHeaderAt(Buffer.from('12 <x>'), 0), undefined);
  t.equal(frameHeaderAt(Buffer.from('012 <34>1'), 0), undefined, 'MSG-LEN has no leading zero');
  t.equal(frameHeaderAt(Buffer.from('12345678 <34>1'), 0), undefined, 'more than 7 digits is not a length');
  t.equal(frameHeaderAt(Buffer.from('<34>1'), 0), undefined);
});

t.test('parseSyslog: the logplex header, nil STRUCTURED-DATA, and broken headers', async (t) => {
  t.same(parseSyslog('<158>1 2020-01-08T22:33:57.353034+00:00 host heroku router - at=info method=GET'), {
    pri: 158,
    timestamp: '2020-01-08T22:33:57.353034+00:00',
    hostname: 'host',
    appName: 'heroku',
    procId: 'router',
    msgId: '-',
    msg: 'at=info method=GET',
  });
  const old = parseSyslog('<174>1 2013-04-17T19:04:46+00:00 d.1234-drain-identifier-567 heroku logplex - - Error L10 (output buffer overflow): 500 messages dropped');
  t.equal(old?.hostname, 'd.1234-drain-identifier-567', 'old syslog-drain layout: the drain token is the HOSTNAME');
  t.equal(old?.msg, 'Error L10 (output buffer overflow): 500 messages dropped', 'a nil SD (`- `) is dropped');
  const render = parseSyslog('<0>1 2021-03-31T16:00:00-08:00 test-service cron-12345 74440 cron-12345 - hello this is a test');
  t.same([render?.appName, render?.procId, render?.msgId, render?.msg], ['cron-12345', '74440', 'cron-12345', 'hello this is a test']);
  t.equal(parseSyslog('<134>1 2016-02-13T21:20:25+00:00 host app postgres.1127530 - [GREEN] [14-1]  sql_error_code = 00000')?.msg, '[GREEN] [14-1]  sql_error_code = 00000', 'a `[` MSG is kept');
  t.equal(parseSyslog('<134>1 2016-02-13T21:20:25+00:00 host app web.1 -')?.msg, '', 'no MSG at all');
  t.equal(parseSyslog('<134>1 2016-02-13T21:20:25+00:00 host app web.1 - -')?.msg, '', 'nil SD and no MSG');
  t.equal(parseSyslog('<134>1 2016-02-13T21:20:25+00:00 host app web.1'), undefined, 'MSGID missing');
  t.equal(parseSyslog('<134>1 2016-02-13T21:20:25+00:00  app web.1 - x'), undefined, 'empty HOSTNAME');
  t.equal(parseSyslog('<192>1 2016-02-13T21:20:25+00:00 host app web.1 - x'), undefined, 'PRI above 191');
  t.equal(parseSyslog('<34>Oct 11 22:14:15 mymachine su: x'), undefined, 'RFC 3164 is not RFC 5424');
  t.equal(parseSyslog('what am i doing here'), undefined);
});

t.test('parseRfc3339: fractions, offsets, -00:00, and the malformed logplex-input stamp', async (t) => {
  t.equal(parseRfc3339('2012-11-30T06:45:29+00:00'), Date.UTC(2012, 10, 30, 6, 45, 29));
  t.equal(parseRfc3339('2020-01-08T22:33:57.353034+00:00'), Date.UTC(2020, 0, 8, 22, 33, 57, 353));
  t.equal(parseRfc3339('2023-08-24T12:31:50.112+00:00'), Date.UTC(2023, 7, 24, 12, 31, 50, 112));
  t.equal(parseRfc3339('2013-07-22T00:06:26-00:00'), Date.UTC(2013, 6, 22, 0, 6, 26));
  t.equal(parseRfc3339('2021-03-31T16:00:00-08:00'), Date.UTC(2021, 3, 1, 0, 0, 0));
  t.equal(parseRfc3339('2021-03-31T16:00:00+05:30'), Date.UTC(2021, 2, 31, 10, 30, 0));
  t.equal(parseRfc3339('2022-09-27T20:34:37.252022967Z'), Date.UTC(2022, 8, 27, 20, 34, 37, 252));
  t.equal(parseRfc3339('2012-12-10T04:05:25Z+00:00'), undefined);
  t.equal(parseRfc3339('-'), undefined);
  t.equal(parseRfc3339('yesterday'), undefined);
});

t.test('a body of back-to-back frames with no LF splits in linear time', async (t) => {
  // Every frame looks for an LF inside it; each search used to scan to the end of the body, so a 4 MiB
  // body of such frames took seconds of blocked event loop.
  const msg = '<190>1 - host app web.1 - count#x=1';
  const one = `${Buffer.byteLength(msg)} ${msg}`;
  const body = Buffer.from(one.repeat(Math.floor((4 * 1024 * 1024) / one.length)));
  const started = performance.now();
  const { frames, junk } = split(body);
  const ms = performance.now() - started;
  t.equal(frames.length, Math.floor((4 * 1024 * 1024) / one.length));
  t.ok(frames.every((f) => f === msg));
  t.same(junk, []);
  t.ok(ms < 1000, `${ms.toFixed(0)} ms for ${body.length} bytes (bound 1000 ms)`);
  // LFs far apart still cut frames where they belong.
  const mixed = split(`${frame(A, '')}${frame(B, '')}${frame(C, '\n', -3)}${frame(A)}${frame(B, '')}`);
  t.same(mixed.frames, [A, B, C, A, B]);
});
