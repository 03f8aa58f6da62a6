// @ts-check
/**
 * Lint rules. Layout is Prettier's job (.prettierrc); this file checks what the compiler does not:
 * promises that are dropped or handed where a callback is expected (an async daemon's classic bugs),
 * switches that miss a case of a union, type-only imports, and the architecture below.
 *
 * The architecture (README, "Design notes"), stated as import zones:
 * - proto/ (the wire contract) imports nothing of ours;
 * - client/ imports only proto/;
 * - scripts/ import client/ and proto/ (and the test harness in test/support/), never daemon/;
 * - inside daemon/, only daemon/cli/ and daemon/doctor/ may import client/;
 * - nothing outside daemon/ and test/ imports daemon/;
 * - and no import cycles anywhere.
 * The TypeScript project references (proto/, client/, daemon/ tsconfig.json) enforce the first two at compile
 * time as well, and forbid Node in proto/.
 */
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { importX } from 'eslint-plugin-import-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// import-x's TypeScript settings (which files it parses, with which parser), without its legacy resolver entry.
const { 'import-x/resolver': _legacyResolver, ...importTypeScriptSettings } = importX.flatConfigs.typescript.settings;

const OURS = ['./proto', './client', './daemon', './scripts', './test', './bench'];
const except = (...dirs) => OURS.filter((dir) => !dirs.includes(dir));

export default tseslint.config(
  { ignores: ['dist/', 'bench/results/', 'node_modules/', '.stryker-tmp/', 'reports/'] },

  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // A switch over a union must name every member or say `default:` (a default is a decision, e.g. exit code 1).
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'inline-type-imports' }],
      // Input validation rejects control characters on purpose (/[\x00-\x1f]/ in URLs and handler files).
      'no-control-regex': 'off',
      // `_name` marks a parameter or binding that is unused on purpose.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },

  // Plain JavaScript (ESM scripts, this file): no type information, Node globals.
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { ...globals.node } },
  },

  // Imports: resolved like TypeScript does (`./x.js` → `./x.ts`), then checked against the architecture.
  {
    plugins: { 'import-x': importX },
    settings: {
      ...importTypeScriptSettings,
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: 'tsconfig.json' })],
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-restricted-paths': [
        'error',
        {
          basePath: import.meta.dirname,
          zones: [
            { target: './proto', from: except('./proto'), message: 'proto/ is the wire contract: it imports nothing of ours.' },
            { target: './client', from: except('./proto', './client'), message: 'client/ imports only proto/.' },
            { target: './scripts', from: './daemon', message: 'scripts/ use the product through client/ and proto/, never daemon/.' },
            { target: './scripts', from: './test', except: ['./support'], message: 'scripts/ may use the test harness in test/support/, not the tests.' },
            {
              target: ['./daemon/*.ts', './daemon/!(cli|doctor)/**'],
              from: './client',
              message: 'Only daemon/cli/ and daemon/doctor/ may use the client library; the rest of the daemon is the server.',
            },
            { target: ['./bench', './*.ts', './*.js'], from: './daemon', message: 'Nothing outside daemon/ and test/ imports daemon/.' },
          ],
        },
      ],
    },
  },
);
