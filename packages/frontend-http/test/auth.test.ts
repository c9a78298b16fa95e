import t from 'tap';
import { createHmac, timingSafeEqual } from 'node:crypto';
import * as crypto from 'node:crypto';
import { CredentialStore, constantTimeEqual, isLoopbackHost, parseAuthorization, verifyVercelSignature } from '../src/auth.js';
import type * as AuthModule from '../src/auth.js';
import { basic, entry, fixture } from './helpers.js';

t.test('constantTimeEqual: equal and unequal, whatever the lengths', async (t) => {
  t.equal(constantTimeEqual('secret', 'secret'), true);
  t.equal(constantTimeEqual('secret', 'secreT'), false);
  t.equal(constantTimeEqual('a', 'a much longer string'), false, 'different lengths return false');
  t.equal(constantTimeEqual('', ''), true);
  t.equal(constantTimeEqual(Buffer.from('xy'), 'xy'), true);
  // The property the helper exists for: timingSafeEqual itself throws on unequal lengths.
  t.throws(() => timingSafeEqual(Buffer.from('a'), Buffer.from('ab')));
});

t.test('every comparison goes through timingSafeEqual on two 32-byte digests', async (t) => {
  const calls: [number, number][] = [];
  const auth = await t.mockImport<typeof AuthModule>('../src/auth.js', {
    'node:crypto': {
      ...crypto,
      timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
        calls.push([a.byteLength, b.byteLength]);
        return crypto.timingSafeEqual(a, b);
      },
    },
  });
  t.equal(auth.constantTimeEqual('x', 'a far longer value than x'), false);
  t.same(calls, [[32, 32]], 'inputs of 1 and 25 bytes are compared as equal-length digests');

  calls.length = 0;
  const store = new auth.CredentialStore([{ user: 'a', password: 'b' }, { user: 'token' }, { password: 'p' }]);
  t.equal(store.check('a', 'b').ok, true);
  // 3 credentials × (user + password): no early exit on the first match, so time does not tell which matched.
  t.equal(calls.length, 6);
  t.ok(calls.every(([x, y]) => x === 32 && y === 32));

  calls.length = 0;
  t.equal(auth.verifyVercelSignature('test-secret', Buffer.from('body'), 'short'), false);
  t.same(calls, [[32, 32]], 'the Vercel signature is compared the same way');
});

t.test('parseAuthorization: Basic (standard and URL-safe base64), token forms, Bearer', async (t) => {
  t.same(parseAuthorization(basic('user:pass')), { kind: 'basic', user: 'user', password: 'pass' });
  t.same(parseAuthorization(basic('token')), { kind: 'basic', user: 'token', password: '' });
  t.same(parseAuthorization(basic('token:')), { kind: 'basic', user: 'token', password: '' });
  t.same(parseAuthorization(basic(':secret')), { kind: 'basic', user: '', password: 'secret' });
  t.same(parseAuthorization(basic('u:pa:ss')), { kind: 'basic', user: 'u', password: 'pa:ss' }, 'only the first colon splits');
  // "~~~~" encodes to "fn5+fg==" in the standard alphabet and "fn5-fg==" in the URL-safe one (l2met's decoder).
  t.same(parseAuthorization('basic fn5-fg=='), { kind: 'basic', user: '~~~~', password: '' });
  t.same(parseAuthorization('Bearer abc.def'), { kind: 'bearer', token: 'abc.def' });
  t.equal(parseAuthorization(undefined), undefined);
  t.equal(parseAuthorization('Digest x=1, y=2'), undefined);
  t.equal(parseAuthorization('Basic'), undefined);
});

t.test('CredentialStore: user:pass, bare token (token or token:), :password, app mapping', async (t) => {
  const store = new CredentialStore([{ user: 'user', password: 'pass', app: 'shop' }, { user: 'long-token' }, { password: 'secret' }]);
  t.same(store.checkHeader(basic('user:pass')), { ok: true, index: 0, app: 'shop' });
  t.same(store.checkHeader(basic('long-token')), { ok: true, index: 1, app: undefined }, 'l2met-style token@');
  t.same(store.checkHeader(basic('long-token:')), { ok: true, index: 1, app: undefined }, 'token with a trailing colon');
  t.same(store.checkHeader(basic(':secret')), { ok: true, index: 2, app: undefined }, 'heroku_drain_datadog-style :password');
  t.same(store.checkHeader(basic('user:wrong')), { ok: false });
  t.same(store.checkHeader(basic('user')), { ok: false }, 'a user with a password configured needs it');
  t.same(store.checkHeader(basic('long-token:extra')), { ok: false }, 'a token credential takes no password');
  t.same(store.checkHeader(basic('anyone:secret')), { ok: false }, 'a password-only credential needs an empty user');
  t.same(store.checkHeader(undefined), { ok: false });
  t.same(store.checkHeader('Bearer secret'), { ok: true, index: 2, app: undefined }, 'Bearer matches a password-only credential');
  t.same(store.checkHeader('Bearer long-token'), { ok: true, index: 1, app: undefined }, 'Bearer matches a token credential');
  t.same(store.checkHeader('Bearer pass'), { ok: false }, 'Bearer never matches half of a user:pass credential');
  t.equal(store.size, 3);
  t.equal(new CredentialStore([]).size, 0);
});

t.test('CredentialStore accepts the real logplex-input Authorization header', async (t) => {
  const e = entry('logplex_input_10msg_nosep.logplex');
  const store = new CredentialStore([{ user: 'token', password: 't.d6799f88-4a77-402f-b197-2b722a02cdbc' }]);
  t.equal(store.checkHeader(e.headers['Authorization']).ok, true);
});

t.test('Vercel signature: the MANIFEST vectors and the reference test vectors', async (t) => {
  for (const file of ['vercel_2msg.ndjson', 'vercel_2msg.json']) {
    const e = entry(file);
    t.equal(verifyVercelSignature('test-secret', fixture(file), e.headers['x-vercel-signature']!), true, file);
    t.equal(verifyVercelSignature('other-secret', fixture(file), e.headers['x-vercel-signature']!), false, `${file} with another secret`);
  }
  t.equal(verifyVercelSignature('test-secret', fixture('vercel_2msg_badsig.ndjson'), entry('vercel_2msg_badsig.ndjson').headers['x-vercel-signature']!), false);
  const arr = Buffer.from('[{"id":"1","message":"hello","timestamp":1573817187330,"source":"lambda","projectId":"p","deploymentId":"d","host":"h","level":"info"}]');
  t.equal(arr.length, 135);
  t.equal(verifyVercelSignature('test-secret', arr, '6599a23f62af3101b664da4d3b3616d077beadd2'), true);
  t.equal(verifyVercelSignature('test-secret', arr, '6599A23F62AF3101B664DA4D3B3616D077BEADD2'), true, 'hex case does not matter');
  const firstLine = fixture('vercel_2msg.ndjson').subarray(0, 340);
  t.equal(verifyVercelSignature('test-secret', firstLine, 'da44a7d146b2b6f79d967280fbd159d96c5fc0ce'), true);
  t.equal(createHmac('sha1', 'test-secret').update(firstLine).digest('hex'), 'da44a7d146b2b6f79d967280fbd159d96c5fc0ce');
});

t.test('isLoopbackHost', async (t) => {
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) t.equal(isLoopbackHost(h), true, h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', '::ffff:10.0.0.1', 'example.com', '']) t.equal(isLoopbackHost(h), false, h);
});
