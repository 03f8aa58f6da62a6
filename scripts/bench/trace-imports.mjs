/**
 * Preload (`node --import ./scripts/bench/trace-imports.mjs …`): records every module the process loads
 * (ESM and CommonJS, builtins included) and writes the URLs, one per line, to $TRACE_IMPORTS_OUT at exit.
 */
import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const loaded = new Set();
registerHooks({
  load(url, context, nextLoad) {
    loaded.add(url);
    return nextLoad(url, context);
  },
});
process.on('exit', () => {
  if (process.env.TRACE_IMPORTS_OUT) writeFileSync(process.env.TRACE_IMPORTS_OUT, [...loaded].join('\n') + '\n');
});
