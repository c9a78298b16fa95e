import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

t.test('the README embedding example runs against the built package', async (t) => {
  const readme = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');
  const m = /<!-- example:embed -->\s*```js\n([\s\S]*?)```/.exec(readme);
  t.ok(m, 'README has the example');
  // Inside the package folder so the example's self-import resolves through the exports map.
  const file = fileURLToPath(new URL('../readme-example.tmp.mjs', import.meta.url));
  writeFileSync(file, m![1]!);
  t.teardown(() => rmSync(file, { force: true }));
  const out = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 20_000 });
  t.match(out, /^jobs\.done rate 0\.1 queue:emails$/m);
  t.match(out, /^queue\.depth gauge 42 $/m);
  t.match(out, /^job\.duration\.max gauge 120 queue:emails$/m);
  t.match(out, /^raw\.hits rate 0\.3 $/m);
  t.match(out, /^latency\.max gauge 12 route:\/a$/m);
  t.match(out, /^users\.active gauge 1 $/m);
  t.match(out, /^payload\.bytes distribution count=1$/m);
});
