/**
 * Bundles the `tokenbroker` bin's fast entry (daemon/cli/fast.ts) with esbuild into
 * dist/daemon/cli/tokenbroker.cjs: the commands kubectl and git run on every invocation (`token`,
 * `git-credential`) in one CommonJS file, with no node_modules inside (the client and the protocol
 * only). Run by `npm run build` after tsc. Everything else stays in dist/ as tsc wrote it: the bundle
 * imports dist/daemon/cli/main.js for any other command.
 */
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const result = await build({
  entryPoints: [path.join(root, 'daemon/cli/fast.ts')],
  outfile: path.join(root, 'dist/daemon/cli/tokenbroker.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node22',
  // The full CLI stays as tsc built it; a dependency reaching the bundle would be a mistake (checked below).
  external: ['./main.js'],
  packages: 'external',
  minifySyntax: true,
  minifyWhitespace: true,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});
const inputs = Object.keys(result.metafile.inputs);
const foreign = inputs.filter((file) => file.includes('node_modules/'));
if (foreign.length) throw new Error(`the CLI bundle must not contain dependencies: ${foreign.join(', ')}`);
