import t from 'tap';
import { AdminAuth, hostAllowed, hostName, isLoopbackHost, parseBasic, parseCredential } from '../src/index.js';
import { basic } from './helpers.js';

t.test('parseBasic decodes user:password and rejects the rest', async (t) => {
  t.same(parseBasic(basic('ops', 's3:cret')), { user: 'ops', password: 's3:cret' });
  t.same(parseBasic(`  basic ${Buffer.from('a:').toString('base64')} `), { user: 'a', password: '' });
  t.equal(parseBasic(undefined), undefined);
  t.equal(parseBasic('Bearer abc'), undefined);
  t.same(parseBasic(`Basic ${Buffer.from('nocolon').toString('base64')}`), { user: 'nocolon', password: '' }, 'a token alone, as the HTTP front-end reads it');
  t.equal(parseBasic('Basic'), undefined);
  t.equal(parseBasic('Basic a b'), undefined);
});

t.test('AdminAuth accepts only a configured pair; off when none', async (t) => {
  const off = new AdminAuth([]);
  t.equal(off.enabled, false);
  t.equal(off.check(undefined), true);
  const auth = new AdminAuth([
    { user: 'ops', password: 'pw' },
    { user: 'ro', password: 'other' },
  ]);
  t.equal(auth.enabled, true);
  t.equal(auth.check(basic('ops', 'pw')), true);
  t.equal(auth.check(basic('ro', 'other')), true);
  t.equal(auth.check(basic('ops', 'other')), false, 'password of another credential');
  t.equal(auth.check(basic('ops', 'pw ')), false);
  t.equal(auth.check(basic('', '')), false);
  t.equal(auth.check(undefined), false);
  t.equal(auth.check('Bearer pw'), false);
});

t.test('an absent header is refused even for a credential equal to the placeholder', async (t) => {
  const auth = new AdminAuth([{ user: '\u0000', password: '\u0000' }]);
  t.equal(auth.check(undefined), false);
});

t.test('parseCredential splits at the first colon and needs a user', async (t) => {
  t.same(parseCredential('ops:a:b'), { user: 'ops', password: 'a:b' });
  t.same(parseCredential('ops:'), { user: 'ops', password: '' });
  t.equal(parseCredential(':pw'), undefined);
  t.equal(parseCredential('ops'), undefined);
});

t.test('isLoopbackHost', async (t) => {
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']) t.equal(isLoopbackHost(h), true, h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '']) t.equal(isLoopbackHost(h), false, h);
});

t.test('hostName and hostAllowed: loopback names and the allowed list only', async (t) => {
  t.equal(hostName('[::1]:8126'), '::1');
  t.equal(hostName('LocalHost:80'), 'localhost');
  t.equal(hostName('127.0.0.1'), '127.0.0.1');
  t.equal(hostName('[::1'), undefined);
  const none = new Set<string>();
  for (const h of ['127.0.0.1:8126', 'localhost:8126', '[::1]:8126', 'localhost', undefined]) t.equal(hostAllowed(h, none), true, String(h));
  for (const h of ['evil.example:8126', '10.0.0.1:8126', '', '[::1']) t.equal(hostAllowed(h, none), false, h);
  t.equal(hostAllowed('proxy.internal:8126', new Set(['proxy.internal'])), true);
});
