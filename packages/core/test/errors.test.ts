import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ErrorCodes, MdError, isMdError } from '../src/errors.js';

t.test('MdError keeps code, default message and cause', async (t) => {
  const cause = new Error('root');
  const e = new MdError('MD_ERR_PARSE_TYPE', undefined, { cause });
  t.equal(e.code, 'MD_ERR_PARSE_TYPE');
  t.equal(e.message, ErrorCodes.MD_ERR_PARSE_TYPE);
  t.equal(e.cause, cause);
  t.ok(isMdError(e, 'MD_ERR_PARSE_TYPE'));
  t.notOk(isMdError(e, 'MD_ERR_PARSE_RATE'));
  t.notOk(isMdError(new Error('x')));
});

t.test('every code follows MD_ERR_<AREA>_<WHAT>', async (t) => {
  for (const code of Object.keys(ErrorCodes)) t.match(code, /^MD_ERR_[A-Z]+_[A-Z_]+$/);
});

// The registry, the code and the docs stay in step: every code is raised somewhere, documented, and
// the docs name no code that does not exist.
t.test('every code is raised in some package and documented in docs/ERRORS.md; unused codes are gone', async (t) => {
  const repo = join(import.meta.dirname, '..', '..', '..');
  const sources: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith('.ts') && !(dir.endsWith(join('core', 'src')) && e.name === 'errors.ts')) sources.push(readFileSync(join(dir, e.name), 'utf8'));
    }
  };
  for (const pkg of readdirSync(join(repo, 'packages'))) {
    try {
      walk(join(repo, 'packages', pkg, 'src'));
    } catch {
      // a folder without src/ has nothing to raise
    }
  }
  t.ok(sources.length > 20, 'read the packages’ sources');
  const all = sources.join('\n');
  const docs = readFileSync(join(repo, 'docs', 'ERRORS.md'), 'utf8');
  for (const code of Object.keys(ErrorCodes)) {
    t.ok(all.includes(`'${code}'`), `${code} is raised somewhere`);
    t.ok(docs.includes(`| \`${code}\` |`), `${code} is documented`);
  }
  for (const m of docs.matchAll(/MD_ERR_[A-Z_]+/g)) t.ok(m[0] in ErrorCodes, `${m[0]} in the docs exists`);
});
