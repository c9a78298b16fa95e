import t from 'tap';
import type { ErrorCode } from '../../src/errors.js';
import type { ServiceCheck, StatsdEvent } from '../../src/model.js';
import { StatsdParser, parseNumber, viewName, viewTags } from '../../src/parser/statsd.js';
import type { SampleView, StatsdHandler, StatsdParserOptions } from '../../src/parser/types.js';

interface SampleRec {
  kind: 'sample';
  name: string;
  type: string;
  values: number[];
  set: string | null;
  rate: number;
  tags: string[];
  ts: number;
  gaugeDelta: number;
  container: string | null;
  card: string | null;
}
interface BadRec {
  kind: 'bad';
  code: ErrorCode;
  line: string;
}
type Rec = SampleRec | BadRec | { kind: 'event'; event: StatsdEvent } | { kind: 'sc'; check: ServiceCheck };

function sliceOrNull(v: SampleView, s: number, e: number): string | null {
  return s < 0 ? null : v.buf.toString('utf8', s, e);
}

function recorder(): { out: Rec[]; handler: StatsdHandler } {
  const out: Rec[] = [];
  const handler: StatsdHandler = {
    sample(v) {
      out.push({
        kind: 'sample',
        name: viewName(v),
        type: v.type,
        values: Array.from(v.values.subarray(0, v.valueCount)),
        set: sliceOrNull(v, v.setStart, v.setEnd),
        rate: v.sampleRate,
        tags: viewTags(v),
        ts: v.timestampS,
        gaugeDelta: v.gaugeDelta,
        container: sliceOrNull(v, v.containerStart, v.containerEnd),
        card: sliceOrNull(v, v.cardinalityStart, v.cardinalityEnd),
      });
    },
    event(event) {
      out.push({ kind: 'event', event });
    },
    serviceCheck(check) {
      out.push({ kind: 'sc', check });
    },
    bad(code, buf, start, end) {
      out.push({ kind: 'bad', code, line: buf.toString('utf8', start, end) });
    },
  };
  return { out, handler };
}

function run(input: string | Buffer, opts?: StatsdParserOptions): Rec[] {
  const { out, handler } = recorder();
  new StatsdParser(opts).parse(typeof input === 'string' ? Buffer.from(input) : input, handler);
  return out;
}

function S(name: string, type: string, values: number[], extra: Partial<SampleRec> = {}): SampleRec {
  return {
    kind: 'sample',
    name,
    type,
    values,
    set: null,
    rate: 1,
    tags: [],
    ts: 0,
    gaugeDelta: 0,
    container: null,
    card: null,
    ...extra,
  };
}
const B = (code: ErrorCode, line: string): BadRec => ({ kind: 'bad', code, line });

function E(title: string, text: string, extra: Partial<StatsdEvent> = {}): Rec {
  return { kind: 'event', event: { title, text, timestampS: 0, priority: 'normal', alertType: 'info', tags: [], ...extra } };
}
function SC(name: string, status: 0 | 1 | 2 | 3, extra: Partial<ServiceCheck> = {}): Rec {
  return { kind: 'sc', check: { name, status, timestampS: 0, tags: [], ...extra } };
}
/** `_e{…}` header with the real UTF-8 byte lengths. */
function ev(title: string, text: string, rest = ''): string {
  return `_e{${Buffer.byteLength(title)},${Buffer.byteLength(text)}}:${title}|${text}${rest}`;
}

// [line, expected records, options]
type Case = [string, Rec[], StatsdParserOptions?];

const metricCases: Case[] = [
  // basics and every type
  ['page.views:1|c', [S('page.views', 'c', [1])]],
  ['daemon:666|g', [S('daemon', 'g', [666])]],
  ['t:1.5|ms', [S('t', 'ms', [1.5])]],
  ['t:2|h', [S('t', 'h', [2])]],
  ['t:-3.25e2|d', [S('t', 'd', [-325])]],
  ['u:user42|s', [S('u', 's', [], { set: 'user42' })]],
  ['♬†øU†øU¥ºuT0♪:666|g', [S('♬†øU†øU¥ºuT0♪', 'g', [666])]],
  ['a\u0000b:1|c', [S('a\u0000b', 'c', [1])]],
  ['name with space:1|c', [S('name with space', 'c', [1])]],
  // name/value split
  ['daemon:|g', [B('MD_ERR_PARSE_VALUE', 'daemon:|g')]],
  [':666|g', [B('MD_ERR_PARSE_FORMAT', ':666|g')]],
  ['abc666|g', [B('MD_ERR_PARSE_FORMAT', 'abc666|g')]],
  ['abc666', [B('MD_ERR_PARSE_FORMAT', 'abc666')]],
  ['a:1', [B('MD_ERR_PARSE_FORMAT', 'a:1')]],
  [':|c', [B('MD_ERR_PARSE_FORMAT', ':|c')]],
  // the first `|` ends the name: a `:` after it (in the type or tags) does not split name and value
  ['abc|c|#k:v', [B('MD_ERR_PARSE_FORMAT', 'abc|c|#k:v')]],
  ['|a:1|c', [B('MD_ERR_PARSE_FORMAT', '|a:1|c')]],
  ['a:1:x|h', [B('MD_ERR_PARSE_VALUE', 'a:1:x|h')]],
  ['a:x|c|#k:v', [B('MD_ERR_PARSE_VALUE', 'a:x|c|#k:v')]],
  // sets keep the raw value whole
  ['daemon:abc:def|s', [S('daemon', 's', [], { set: 'abc:def' })]],
  ['daemon:1::|s', [S('daemon', 's', [], { set: '1::' })]],
  // multi-value
  ['a:1:2:3|h', [S('a', 'h', [1, 2, 3])]],
  ['a:21::22|h', [S('a', 'h', [21, 22])]],
  ['a:1::|h', [S('a', 'h', [1])]],
  ['a::1|c', [S('a', 'c', [1])]],
  ['a::|h', [B('MD_ERR_PARSE_VALUE', 'a::|h')]],
  ['a:|h', [B('MD_ERR_PARSE_VALUE', 'a:|h')]],
  ['a:1:x:3|h', [B('MD_ERR_PARSE_VALUE', 'a:1:x:3|h')]],
  ['a:1:2|d|@0.5|#x', [S('a', 'd', [1, 2], { rate: 0.5, tags: ['x'] })]],
  // type
  ['a:1|', [B('MD_ERR_PARSE_TYPE', 'a:1|')]],
  ['a:1|x', [B('MD_ERR_PARSE_TYPE', 'a:1|x')]],
  ['a:1|C', [B('MD_ERR_PARSE_TYPE', 'a:1|C')]],
  ['x:1|c ', [B('MD_ERR_PARSE_TYPE', 'x:1|c ')]],
  ['a:1|msx', [B('MD_ERR_PARSE_TYPE', 'a:1|msx')]],
  ['a:1|m', [B('MD_ERR_PARSE_TYPE', 'a:1|m')]],
  ['a:1|unknown|#x', [B('MD_ERR_PARSE_TYPE', 'a:1|unknown|#x')]],
  ['a:zz|q', [B('MD_ERR_PARSE_TYPE', 'a:zz|q')]],
  // values: strict
  ['a:1x|c', [B('MD_ERR_PARSE_VALUE', 'a:1x|c')]],
  ['a: 5|c', [B('MD_ERR_PARSE_VALUE', 'a: 5|c')]],
  ['a:5 |c', [B('MD_ERR_PARSE_VALUE', 'a:5 |c')]],
  ['a:0x10|g', [B('MD_ERR_PARSE_VALUE', 'a:0x10|g')]],
  ['a:1_000|g', [B('MD_ERR_PARSE_VALUE', 'a:1_000|g')]],
  ['a:.|g', [B('MD_ERR_PARSE_VALUE', 'a:.|g')]],
  ['a:1e|g', [B('MD_ERR_PARSE_VALUE', 'a:1e|g')]],
  ['a:+|g', [B('MD_ERR_PARSE_VALUE', 'a:+|g')]],
  ['a:NaN|g', [S('a', 'g', [NaN])]],
  ['a:nan|c', [S('a', 'c', [NaN])]],
  ['a:-Inf|g', [S('a', 'g', [-Infinity])]],
  ['a:+INFINITY|h', [S('a', 'h', [Infinity])]],
  ['a:-nan|g', [B('MD_ERR_PARSE_VALUE', 'a:-nan|g')]],
  ['a:infin|g', [B('MD_ERR_PARSE_VALUE', 'a:infin|g')]],
  ['a:1e400|g', [B('MD_ERR_PARSE_VALUE', 'a:1e400|g')]],
  ['a:1e-400|g', [S('a', 'g', [0])]],
  ['a:.5|g', [S('a', 'g', [0.5])]],
  ['a:5.|g', [S('a', 'g', [5])]],
  ['a:1E3|c', [S('a', 'c', [1000])]],
  // gauge signs without deltas (DogStatsD: a sign just sets)
  ['a:+4|g', [S('a', 'g', [4])]],
  ['a:-2|g', [S('a', 'g', [-2])]],
  // gauge deltas enabled
  ['a:+4|g', [S('a', 'g', [4], { gaugeDelta: 1 })], { gaugeDeltas: true }],
  ['a:-2|g', [S('a', 'g', [-2], { gaugeDelta: -1 })], { gaugeDeltas: true }],
  ['a:-0|g', [S('a', 'g', [-0], { gaugeDelta: -1 })], { gaugeDeltas: true }],
  ['a:4|g', [S('a', 'g', [4])], { gaugeDeltas: true }],
  ['a:-2|c', [S('a', 'c', [-2])], { gaugeDeltas: true }],
  ['a:+1:-2|g', [S('a', 'g', [1, -2])], { gaugeDeltas: true }],
  // sample rate
  ['a:1|c|@0.5', [S('a', 'c', [1], { rate: 0.5 })]],
  ['a:1|c|@1', [S('a', 'c', [1])]],
  ['a:1|c|@abc', [B('MD_ERR_PARSE_RATE', 'a:1|c|@abc')]],
  ['a:1|c|@', [B('MD_ERR_PARSE_RATE', 'a:1|c|@')]],
  ['a:1|c|@1e400', [B('MD_ERR_PARSE_RATE', 'a:1|c|@1e400')]],
  ['a:1|c|@0', [S('a', 'c', [1])]],
  ['a:1|c|@2', [S('a', 'c', [1])]],
  ['a:1|c|@-0.5', [S('a', 'c', [1])]],
  ['a:1|c|@nan', [S('a', 'c', [1])]],
  ['a:1|c|@inf', [S('a', 'c', [1])]],
  // tags
  ['a:1|c|#host:web1,env:dev', [S('a', 'c', [1], { tags: ['host:web1', 'env:dev'] })]],
  ['a:1|c|#', [S('a', 'c', [1])]],
  ['a:1|c|#a|#b', [S('a', 'c', [1], { tags: ['b'] })]],
  ['a:1|c|#a|#', [S('a', 'c', [1])]],
  ['a:1|c|#a,,b', [S('a', 'c', [1], { tags: ['a', '', 'b'] })]],
  ['a:1|c|#é:ü', [S('a', 'c', [1], { tags: ['é:ü'] })]],
  // timestamps
  ['page.views:15|c|#env:dev|T1656581400', [S('page.views', 'c', [15], { tags: ['env:dev'], ts: 1656581400 })]],
  ['a:1|g|T1', [S('a', 'g', [1], { ts: 1 })]],
  ['a:1|g|T+5', [S('a', 'g', [1], { ts: 5 })]],
  ['a:1|g|T9223372036854775807', [S('a', 'g', [1], { ts: Number('9223372036854775807') })]],
  ['a:1|g|Tfoo', [B('MD_ERR_PARSE_TIMESTAMP', 'a:1|g|Tfoo')]],
  ['a:1|g|T', [B('MD_ERR_PARSE_TIMESTAMP', 'a:1|g|T')]],
  ['a:1|g|T0', [B('MD_ERR_PARSE_TIMESTAMP', 'a:1|g|T0')]],
  ['a:1|g|T-5', [B('MD_ERR_PARSE_TIMESTAMP', 'a:1|g|T-5')]],
  ['a:1|g|T1.5', [B('MD_ERR_PARSE_TIMESTAMP', 'a:1|g|T1.5')]],
  ['a:1|g|T9223372036854775808', [B('MD_ERR_PARSE_TIMESTAMP', 'a:1|g|T9223372036854775808')]],
  // origin fields, ignored and unknown fields
  ['a:1|c|c:ci-abc', [S('a', 'c', [1], { container: 'ci-abc' })]],
  ['a:1|c|c:', [S('a', 'c', [1], { container: '' })]],
  ['a:1|c|card:low', [S('a', 'c', [1], { card: 'low' })]],
  ['a:1|c|e:it-false,cn-nginx', [S('a', 'c', [1])]],
  ['daemon:666|g|m:test', [S('daemon', 'g', [666])]],
  ['a:1|c|c', [S('a', 'c', [1])]],
  ['a:1|c|cardx', [S('a', 'c', [1])]],
  ['a:1|c|', [S('a', 'c', [1])]],
  ['a:1|c||#x||', [S('a', 'c', [1], { tags: ['x'] })]],
  // every field, two orders
  [
    'a:1|c|@0.25|#t1,t2|T10|c:in-7|e:x|card:high',
    [S('a', 'c', [1], { rate: 0.25, tags: ['t1', 't2'], ts: 10, container: 'in-7', card: 'high' })],
  ],
  [
    'a:1|c|card:high|T10|#t1,t2|c:in-7|@0.25',
    [S('a', 'c', [1], { rate: 0.25, tags: ['t1', 't2'], ts: 10, container: 'in-7', card: 'high' })],
  ],
  // first error wins: a bad rate before a bad timestamp
  ['a:1|c|@x|Tfoo', [B('MD_ERR_PARSE_RATE', 'a:1|c|@x|Tfoo')]],
  ['a:1|c|Tfoo|@x', [B('MD_ERR_PARSE_TIMESTAMP', 'a:1|c|Tfoo|@x')]],
];

const eventCases: Case[] = [
  [
    '_e{21,36}:An exception occurred|Cannot parse CSV file from 10.0.0.17|t:warning|#err_type:bad_file',
    [E('An exception occurred', 'Cannot parse CSV file from 10.0.0.17', { alertType: 'warning', tags: ['err_type:bad_file'] })],
  ],
  [ev('héllo wörld', 'tëxt ✓'), [E('héllo wörld', 'tëxt ✓')]],
  ['_e{6,3}:日本|ü!', [E('日本', 'ü!')]],
  // lengths are bytes: `ü!` is 3 bytes, so a declared 4 leaves the remainder too short
  ['_e{6,4}:日本|ü!', [B('MD_ERR_PARSE_EVENT', '_e{6,4}:日本|ü!')]],
  // character counts are taken as byte counts, cutting inside 日 and 本 (agent parity: byte slices)
  ['_e{2,2}:日本|ü!', [E('\ufffd', '\ufffd')]],
  ['_e{9,8}:a\\nb\\nc\\n|x\\ny\\n\\n', [E('a\nb\nc\n', 'x\ny\n\n')]],
  ['_e{5,10}:hello|short', [B('MD_ERR_PARSE_EVENT', '_e{5,10}:hello|short')]],
  ['_e{5,0}:hello|', [E('hello', '')]],
  ['_e{5,0}:hello', [B('MD_ERR_PARSE_EVENT', '_e{5,0}:hello')]],
  ['_e{0,4}:|text', [B('MD_ERR_PARSE_EVENT', '_e{0,4}:|text')]],
  ['_e{-1,4}:a|text', [B('MD_ERR_PARSE_EVENT', '_e{-1,4}:a|text')]],
  ['_e{1,-4}:a|text', [B('MD_ERR_PARSE_EVENT', '_e{1,-4}:a|text')]],
  ['_e{a,4}:a|text', [B('MD_ERR_PARSE_EVENT', '_e{a,4}:a|text')]],
  ['_e{1,x}:a|text', [B('MD_ERR_PARSE_EVENT', '_e{1,x}:a|text')]],
  ['_e{1,}:a|', [B('MD_ERR_PARSE_EVENT', '_e{1,}:a|')]],
  ['_e{14}:a|b', [B('MD_ERR_PARSE_EVENT', '_e{14}:a|b')]],
  ['_e{1,1}a|b', [B('MD_ERR_PARSE_EVENT', '_e{1,1}a|b')]],
  ['_e{99999999999999999999,1}:a|b', [B('MD_ERR_PARSE_EVENT', '_e{99999999999999999999,1}:a|b')]],
  ['_e{1,9007199254740993}:a|b', [B('MD_ERR_PARSE_EVENT', '_e{1,9007199254740993}:a|b')]],
  // the separator after the title and the closing brace are not checked (agent parity)
  ['_e{5,4}:helloXtext', [E('hello', 'text')]],
  ['_e{5,4):hello|text', [E('hello', 'text')]],
  ['_e{+5,4}:hello|text', [E('hello', 'text')]],
  // a `|` inside the title is kept: lengths rule
  ['_e{3,1}:a|b|c', [E('a|b', 'c')]],
  // optional fields
  [
    '_e{1,1}:T|x|d:1700000000|h:web1|k:agg|p:low|s:nagios|t:error|#a:b,c',
    [
      E('T', 'x', {
        timestampS: 1700000000,
        host: 'web1',
        aggregationKey: 'agg',
        priority: 'low',
        sourceType: 'nagios',
        alertType: 'error',
        tags: ['a:b', 'c'],
      }),
    ],
  ],
  ['_e{1,1}:T|x|p:urgent', [E('T', 'x')]],
  ['_e{1,1}:T|x|p:low|p:urgent', [E('T', 'x', { priority: 'low' })]],
  ['_e{1,1}:T|x|t:success|t:bogus', [E('T', 'x', { alertType: 'success' })]],
  ['_e{1,1}:T|x|t:Error', [E('T', 'x')]],
  ['_e{1,1}:T|x|d:abc', [E('T', 'x')]],
  ['_e{1,1}:T|x|d:5|d:abc', [E('T', 'x', { timestampS: 5 })]],
  ['_e{1,1}:T|x|#', [E('T', 'x')]],
  ['_e{1,1}:T|x|#a|#b,c', [E('T', 'x', { tags: ['b', 'c'] })]],
  ['_e{1,1}:T|x|#host:h1', [E('T', 'x', { tags: ['host:h1'] })]],
  ['_e{1,1}:T|x|h:|k:|s:', [E('T', 'x')]],
  ['_e{1,1}:T|x|zz:1|c:ci-1|card:low|e:x||', [E('T', 'x')]],
  // optional fields start right after the text, with no `|` required (agent parity)
  ['_e{1,1}:T|xp:low', [E('T', 'x', { priority: 'low' })]],
];

const scCases: Case[] = [
  [
    '_sc|Redis connection|2|#env:dev|m:Redis connection timed out after 10s',
    [SC('Redis connection', 2, { tags: ['env:dev'], message: 'Redis connection timed out after 10s' })],
  ],
  ['_sc|n|0', [SC('n', 0)]],
  ['_sc|n|1|', [SC('n', 1)]],
  ['_sc|n|3|d:123|h:host1|#a,b|m:msg', [SC('n', 3, { timestampS: 123, host: 'host1', tags: ['a', 'b'], message: 'msg' })]],
  ['_sc|n|0|m:a|b', [SC('n', 0, { message: 'a' })]],
  ['_sc|n|0|m:a\\nb', [SC('n', 0, { message: 'a\\nb' })]],
  ['_sc|n|0|d:abc', [SC('n', 0)]],
  ['_sc|n|0|d:7|d:x', [SC('n', 0, { timestampS: 7 })]],
  ['_sc|n|0|#', [SC('n', 0)]],
  ['_sc|n|0|h:|m:', [SC('n', 0)]],
  ['_sc|n|0|x:1|c:ci', [SC('n', 0)]],
  ['_sc|名前|0', [SC('名前', 0)]],
  ['_sc|n|4', [B('MD_ERR_PARSE_SERVICE_CHECK', '_sc|n|4')]],
  ['_sc|n|01', [B('MD_ERR_PARSE_SERVICE_CHECK', '_sc|n|01')]],
  ['_sc|n|x', [B('MD_ERR_PARSE_SERVICE_CHECK', '_sc|n|x')]],
  ['_sc|n|', [B('MD_ERR_PARSE_SERVICE_CHECK', '_sc|n|')]],
  ['_sc|n|-1', [B('MD_ERR_PARSE_SERVICE_CHECK', '_sc|n|-1')]],
  ['_sc|n', [B('MD_ERR_PARSE_SERVICE_CHECK', '_sc|n')]],
  ['_sc||0', [B('MD_ERR_PARSE_SERVICE_CHECK', '_sc||0')]],
  ['_sc', [B('MD_ERR_PARSE_SERVICE_CHECK', '_sc')]],
  // the first 4 bytes are dropped unchecked, as in the agent
  ['_scx|n|0', [B('MD_ERR_PARSE_SERVICE_CHECK', '_scx|n|0')]],
  // classification: `_e` without `{` and `_s` without `c` are metrics
  ['_e:1|c', [S('_e', 'c', [1])]],
  ['_s:1|c', [S('_s', 'c', [1])]],
];

for (const [group, cases] of [
  ['metric', metricCases],
  ['event', eventCases],
  ['service check', scCases],
] as const) {
  t.test(`${group} lines`, (t) => {
    for (const [line, want, opts] of cases) {
      if (line === '') continue;
      t.strictSame(run(line, opts), want, JSON.stringify(line) + (opts ? ' ' + JSON.stringify(opts) : ''));
    }
    t.end();
  });
}

t.test('packets: line splitting', (t) => {
  const { out, handler } = recorder();
  const p = new StatsdParser();
  t.equal(p.parse(Buffer.from('a:1|c\r\nb:2|g\n\n\r\nc:3|h'), handler), 3);
  t.strictSame(out, [S('a', 'c', [1]), S('b', 'g', [2]), S('c', 'h', [3])]);

  t.strictSame(run('a:1|c\n'), [S('a', 'c', [1])]);
  t.strictSame(run('a:1|c'), [S('a', 'c', [1])]);
  // only one \r is dropped
  t.strictSame(run('a:1|c\r\r\n'), [B('MD_ERR_PARSE_TYPE', 'a:1|c\r')]);
  // a lone \r in the middle is part of the line
  t.strictSame(run('a:1|c\rb:2|c'), [B('MD_ERR_PARSE_TYPE', 'a:1|c\rb:2|c')]);

  const empty = recorder();
  t.equal(p.parse(Buffer.from('\n\n\r\n\r'), empty.handler), 0);
  t.equal(p.parse(Buffer.alloc(0), empty.handler), 0);
  t.strictSame(empty.out, []);
  t.end();
});

t.test('packets: a garbage line in the middle keeps its neighbours', (t) => {
  const { out, handler } = recorder();
  const n = new StatsdParser().parse(
    Buffer.from('a:1|c\ngarbage\n_e{5,1}:x|y\nb:2|g|#t\n_sc|n|9\n_sc|n|1\nc:x|c\n_e{1,1}:T|x'),
    handler,
  );
  t.equal(n, 8);
  t.strictSame(out, [
    S('a', 'c', [1]),
    B('MD_ERR_PARSE_FORMAT', 'garbage'),
    B('MD_ERR_PARSE_EVENT', '_e{5,1}:x|y'),
    S('b', 'g', [2], { tags: ['t'] }),
    B('MD_ERR_PARSE_SERVICE_CHECK', '_sc|n|9'),
    SC('n', 1),
    B('MD_ERR_PARSE_VALUE', 'c:x|c'),
    E('T', 'x'),
  ]);
  t.end();
});

t.test('bad() gets the exact line offsets, without the \\r', (t) => {
  const buf = Buffer.from('a:1|c\r\nbad\r\nb:1|c');
  const seen: [ErrorCode, number, number][] = [];
  const h: StatsdHandler = {
    sample() {},
    event() {},
    serviceCheck() {},
    bad(code, b, s, e) {
      t.equal(b, buf);
      seen.push([code, s, e]);
    },
  };
  new StatsdParser().parse(buf, h);
  t.strictSame(seen, [['MD_ERR_PARSE_FORMAT', 7, 10]]);
  t.end();
});

t.test('sub-range parsing honours start/end', (t) => {
  const buf = Buffer.from('XXa:1|c\nb:2|cYY');
  const { out, handler } = recorder();
  t.equal(new StatsdParser().parse(buf, handler, 2, 13), 2);
  t.strictSame(out, [S('a', 'c', [1]), S('b', 'c', [2])]);

  // the bytes after `end` must not be read: `|c` at the cut is an unknown field, not `c:zz`
  const cut = Buffer.from('a:1|c|c:zz\n');
  const r2 = recorder();
  new StatsdParser().parse(cut, r2.handler, 0, 7);
  t.strictSame(r2.out, [S('a', 'c', [1])]);

  const r3 = recorder();
  t.equal(new StatsdParser().parseLine(cut, r3.handler, 0, 7), true);
  t.strictSame(r3.out, [S('a', 'c', [1])]);
  t.end();
});

t.test('parseLine', (t) => {
  const p = new StatsdParser();
  const { out, handler } = recorder();
  t.equal(p.parseLine(Buffer.from('a:1|c\r'), handler, 0, 6), true);
  t.equal(p.parseLine(Buffer.from('\r'), handler, 0, 1), false);
  t.equal(p.parseLine(Buffer.from('abc'), handler, 1, 1), false);
  t.equal(p.parseLine(Buffer.from('zzb:2|g'), handler, 2, 7), true);
  t.equal(p.parseLine(Buffer.from('nope'), handler, 0, 4), true);
  t.strictSame(out, [S('a', 'c', [1]), S('b', 'g', [2]), B('MD_ERR_PARSE_FORMAT', 'nope')]);
  t.end();
});

t.test('every view field is reset between lines', (t) => {
  const buf = Buffer.from('a:x:y|s\nb:-1|g|#t|@0.5|T5|c:ci|card:low\nc:1:2|h\nd:3|c\n');
  const raw: Omit<SampleView, 'buf' | 'values' | 'nameHash'>[] = [];
  const p = new StatsdParser({ gaugeDeltas: true });
  p.parse(buf, {
    sample(v) {
      t.equal(v.buf, buf);
      // FNV-1a of the one-byte name from the default basis.
      t.equal(v.nameHash, Math.imul(0x811c9dc5 ^ buf[v.nameStart]!, 16777619), 'nameHash is FNV-1a of the name');
      const { buf: _b, values: _v, nameHash: _h, ...rest } = v;
      raw.push({ ...rest });
    },
    event() {},
    serviceCheck() {},
    bad() {
      t.fail('no bad line expected');
    },
  });
  const base = {
    setStart: -1,
    setEnd: -1,
    sampleRate: 1,
    tagsStart: -1,
    tagsEnd: -1,
    timestampS: 0,
    gaugeDelta: 0,
    containerStart: -1,
    containerEnd: -1,
    cardinalityStart: -1,
    cardinalityEnd: -1,
  };
  t.strictSame(raw, [
    { ...base, nameStart: 0, nameEnd: 1, type: 's', valueCount: 0, setStart: 2, setEnd: 5 },
    {
      ...base,
      nameStart: 8,
      nameEnd: 9,
      type: 'g',
      valueCount: 1,
      sampleRate: 0.5,
      tagsStart: 16,
      tagsEnd: 17,
      timestampS: 5,
      gaugeDelta: -1,
      containerStart: 28,
      containerEnd: 30,
      cardinalityStart: 36,
      cardinalityEnd: 39,
    },
    { ...base, nameStart: 40, nameEnd: 41, type: 'h', valueCount: 2 },
    { ...base, nameStart: 48, nameEnd: 49, type: 'c', valueCount: 1 },
  ]);
  t.end();
});

t.test('multi-value lines grow the value array', (t) => {
  const vals = Array.from({ length: 100 }, (_, i) => i * 1.5);
  const line = `big:${vals.join(':')}|h`;
  t.strictSame(run(`${line}\nsmall:7|h\n${line}`), [S('big', 'h', vals), S('small', 'h', [7]), S('big', 'h', vals)]);
  const huge = Array.from({ length: 100000 }, (_, i) => i);
  const r = run(`x:${huge.join(':')}|d`);
  t.equal(r.length, 1);
  const s = r[0] as SampleRec;
  t.equal(s.values.length, 100000);
  t.equal(s.values[99999], 99999);
  t.end();
});

t.test('invalid UTF-8 names and tags are kept as bytes', (t) => {
  const buf = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(':1|c|#'), Buffer.from([0xc3]), Buffer.from(',ok')]);
  const seen: { nameStart: number; nameEnd: number; name: string; tags: string[] }[] = [];
  new StatsdParser().parse(buf, {
    sample(v) {
      seen.push({ nameStart: v.nameStart, nameEnd: v.nameEnd, name: viewName(v), tags: viewTags(v) });
    },
    event() {},
    serviceCheck() {},
    bad() {},
  });
  t.strictSame(seen, [{ nameStart: 0, nameEnd: 2, name: '\ufffd\ufffd', tags: ['\ufffd', 'ok'] }]);
  t.end();
});

t.test('parseNumber: fixed cases', (t) => {
  const cases: [string, number][] = [
    ['0', 0],
    ['-0', -0],
    ['+0.0', 0],
    ['-0.0', -0],
    ['42', 42],
    ['+42', 42],
    ['-42', -42],
    ['1.', 1],
    ['.5', 0.5],
    ['-.5', -0.5],
    ['1.5e3', 1500],
    ['1.5E+3', 1500],
    ['15e-1', 1.5],
    ['0.1', 0.1],
    ['0.3', 0.3],
    ['123456789012345678901234567890', 1.2345678901234568e29],
    ['9007199254740993', 9007199254740992],
    ['1e400', Infinity],
    ['-1e400', -Infinity],
    ['1e-400', 0],
    ['1e99999999999', Infinity],
    ['inf', Infinity],
    ['-Inf', -Infinity],
    ['+infinity', Infinity],
    ['INFINITY', Infinity],
    ['NaN', NaN],
    ['nAn', NaN],
    // invalid → NaN
    ['', NaN],
    [' 5', NaN],
    ['5 ', NaN],
    ['1x', NaN],
    ['0x10', NaN],
    ['0x1p-2', NaN],
    ['1_000', NaN],
    ['.', NaN],
    ['+', NaN],
    ['-', NaN],
    ['e5', NaN],
    ['.e5', NaN],
    ['1e', NaN],
    ['1e+', NaN],
    ['1..2', NaN],
    ['1.2.3', NaN],
    ['--1', NaN],
    ['infin', NaN],
    ['infinityy', NaN],
    ['١', NaN],
  ];
  for (const [s, want] of cases) t.ok(Object.is(parseNumber(Buffer.from(s), 0, Buffer.byteLength(s)), want), `${JSON.stringify(s)} → ${want}`);
  // respects the range
  t.equal(parseNumber(Buffer.from('x12.5y'), 1, 5), 12.5);
  t.ok(Number.isNaN(parseNumber(Buffer.from('12'), 1, 1)));
  t.end();
});

/** Seeded PRNG (mulberry32), so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

t.test('parseNumber equals Number() on random valid literals', (t) => {
  const rnd = prng(12345);
  const int = (n: number) => Math.floor(rnd() * n);
  const digits = (n: number) => Array.from({ length: n }, () => String(int(10))).join('');
  let mismatches = 0;
  let checked = 0;
  for (let k = 0; k < 20000; k++) {
    const sign = ['', '+', '-'][int(3)]!;
    const a = digits(int(rnd() < 0.5 ? 8 : 25));
    const hasDot = rnd() < 0.6;
    const b = hasDot ? digits(int(rnd() < 0.5 ? 8 : 25)) : '';
    if (a === '' && b === '') continue;
    const exp = rnd() < 0.4 ? `${rnd() < 0.5 ? 'e' : 'E'}${['', '+', '-'][int(3)]}${int(rnd() < 0.7 ? 30 : 400)}` : '';
    const s = `${sign}${a}${hasDot ? '.' : ''}${b}${exp}`;
    const got = parseNumber(Buffer.from(s), 0, s.length);
    checked++;
    if (!Object.is(got, Number(s))) {
      mismatches++;
      if (mismatches < 5) t.fail(`${s}: got ${got}, Number() gives ${Number(s)}`);
    }
  }
  // round trip of random doubles in JS's own formats
  for (let k = 0; k < 20000; k++) {
    const x = (rnd() - 0.5) * 10 ** (int(40) - 20);
    for (const s of [String(x), x.toFixed(int(10)), x.toExponential(int(17)), x.toPrecision(1 + int(21))]) {
      const got = parseNumber(Buffer.from(s), 0, s.length);
      checked++;
      if (!Object.is(got, Number(s))) {
        mismatches++;
        if (mismatches < 5) t.fail(`${s}: got ${got}, Number() gives ${Number(s)}`);
      }
    }
  }
  t.equal(mismatches, 0);
  t.ok(checked > 90000);
  t.end();
});

t.test('parse and parseLine agree', (t) => {
  const lines = [...metricCases, ...eventCases, ...scCases].map(([l]) => l).filter((l) => l !== '');
  for (const opts of [{}, { gaugeDeltas: true }]) {
    const whole = recorder();
    const n = new StatsdParser(opts).parse(Buffer.from(lines.join('\r\n')), whole.handler);
    const single = recorder();
    const p = new StatsdParser(opts);
    let m = 0;
    for (const l of lines) {
      const buf = Buffer.from(`  ${l}\r  `);
      if (p.parseLine(buf, single.handler, 2, buf.length - 2)) m++;
    }
    t.equal(n, lines.length);
    t.equal(m, lines.length);
    t.strictSame(single.out, whole.out);
  }
  t.end();
});

t.test('random bytes never throw; parse and parseLine agree on them', (t) => {
  const rnd = prng(987654321);
  const alphabet = Buffer.from(':|@#,.+-eETc_{}s0123456789\n\r\\né');
  let lines = 0;
  let calls = 0;
  let disagreements = 0;
  for (let k = 0; k < 5000; k++) {
    const len = Math.floor(rnd() * 120);
    const buf = Buffer.alloc(len);
    const mode = k % 3;
    for (let i = 0; i < len; i++) {
      buf[i] = mode === 0 || rnd() < 0.2 ? Math.floor(rnd() * 256) : alphabet[Math.floor(rnd() * alphabet.length)]!;
    }
    // seed some lines with plausible prefixes
    if (mode === 1 && len > 3) buf.write(['_e{', '_sc', 'a:1'][k % 3 === 1 ? Math.floor(rnd() * 3) : 0]!, 0, 'latin1');
    const whole = recorder();
    let n = -1;
    try {
      n = new StatsdParser({ gaugeDeltas: (k & 1) === 1 }).parse(buf, whole.handler);
    } catch (err) {
      t.fail(`parse threw on ${buf.toString('hex')}: ${String(err)}`);
      continue;
    }
    // one handler call per non-empty line
    let expected = 0;
    const single = recorder();
    const p = new StatsdParser({ gaugeDeltas: (k & 1) === 1 });
    let pos = 0;
    while (pos <= len) {
      let nl = buf.indexOf(0x0a, pos);
      if (nl < 0) nl = len;
      if (p.parseLine(buf, single.handler, pos, nl)) expected++;
      pos = nl + 1;
    }
    lines += n;
    calls += whole.out.length;
    if (n !== expected || whole.out.length !== n) t.fail(`count mismatch on ${buf.toString('hex')}`);
    if (JSON.stringify(single.out) !== JSON.stringify(whole.out)) {
      disagreements++;
      if (disagreements < 5) t.strictSame(single.out, whole.out, buf.toString('hex'));
    }
  }
  t.equal(disagreements, 0);
  t.equal(calls, lines);
  t.ok(lines > 1000);
  t.end();
});

t.test('huge lines', (t) => {
  const name = 'n'.repeat(1 << 20);
  t.strictSame(run(`${name}:1|c`), [S(name, 'c', [1])]);
  const tags = Array.from({ length: 50000 }, (_, i) => `t${i}`);
  const r = run(`x:1|c|#${tags.join(',')}`);
  t.strictSame(r, [S('x', 'c', [1], { tags })]);
  const longGarbage = '|'.repeat(1 << 20);
  t.strictSame(run(longGarbage), [B('MD_ERR_PARSE_FORMAT', longGarbage)]);
  t.end();
});
