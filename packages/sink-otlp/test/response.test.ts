import t from 'tap';
import { classify, partialSuccess } from '../src/response.js';
import { partialSuccessBody } from './decode.js';

t.test('a 503 waits out its Retry-After, capped at 5 minutes', async (t) => {
  const now = Date.parse('2026-12-03T12:00:00Z');
  const capped = classify({ status: 503, headers: { 'retry-after': '86400' }, body: Buffer.alloc(0) }, 'u', now);
  t.equal(capped.kind === 'retryable' ? capped.retryAfterMs : -1, 300_000, 'capped at 5 min');
  const out = classify({ status: 503, headers: { 'retry-after': '3' }, body: Buffer.alloc(0) }, 'u', now);
  t.equal(out.kind, 'retryable');
  t.equal(out.kind === 'retryable' ? out.retryAfterMs : -1, 3000);
});

t.test('partial success: protobuf and JSON bodies, empty ones, unreadable ones', async (t) => {
  const proto = { 'content-type': 'application/x-protobuf' };
  t.same(partialSuccess(proto, partialSuccessBody(300, 'bad')), { rejected: 300, message: 'bad' });
  t.equal(partialSuccess(proto, Buffer.alloc(0)), undefined, 'an empty response: full success');
  t.equal(partialSuccess(proto, Buffer.from([0x0a, 0x00])), undefined, 'an empty partial_success: full success');
  t.equal(partialSuccess(proto, Buffer.from([0x0a, 0x05, 0x08])), undefined, 'truncated: read as nothing, not thrown');
  const json = { 'content-type': 'application/json; charset=utf-8' };
  t.same(partialSuccess(json, Buffer.from('{"partialSuccess":{"rejectedDataPoints":"4","errorMessage":"m"}}')), { rejected: 4, message: 'm' });
  t.same(partialSuccess(json, Buffer.from('{"partialSuccess":{"rejectedDataPoints":2}}')), { rejected: 2, message: '' }, 'a number from a lax encoder');
  t.equal(partialSuccess(json, Buffer.from('{}')), undefined);
  t.equal(partialSuccess(json, Buffer.from('not json')), undefined);
});
