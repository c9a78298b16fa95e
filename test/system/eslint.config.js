// The root config, read from this folder. Two adjustments, both because this package's files sit at its
// root rather than under test/: the root's relaxations for test files apply to every .ts file here, and
// plain-JavaScript files (soak.mjs, this file) are outside the TypeScript project, so they get the same
// rules without the type-aware ones, and Node's globals.
import tseslint from 'typescript-eslint';
import root from '../../eslint.config.js';

const testRules = root.find((c) => c.files?.includes('**/test/**/*.ts'))?.rules ?? {};
const nodeGlobals = Object.fromEntries(
  ['process', 'Buffer', 'console', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'URL'].map((g) => [g, 'readonly']),
);

export default tseslint.config(
  ...root,
  { files: ['**/*.ts'], rules: testRules },
  {
    files: ['**/*.mjs', '**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: nodeGlobals },
  },
);
