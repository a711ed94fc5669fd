/**
 * Which packages a process loads, for finding what could load on first use instead:
 *
 *   MODULE_TRACE_OUT=/tmp/loaded.txt node --import ./bench/module-trace.mjs bin/clawbox.js start
 *
 * Appends one line per resolved package import, `<package> <= <importing file>`, to MODULE_TRACE_OUT
 * (ESM resolution through a module.register hook; CommonJS requires through Module._load).
 * `cut -d' ' -f1 /tmp/loaded.txt | sort -u` lists the packages loaded.
 */
import { appendFileSync } from 'node:fs';
import Module, { register } from 'node:module';

const out = process.env.MODULE_TRACE_OUT;
if (!out) throw new Error('set MODULE_TRACE_OUT to the file the trace goes to');
const PACKAGE = /node_modules\/((?:@[^/]+\/)?[^/]+)/;

const load = Module._load;
Module._load = function traced(request, parent, isMain) {
  const loaded = load.apply(this, [request, parent, isMain]);
  try {
    const found = PACKAGE.exec(Module._resolveFilename(request, parent));
    if (found) appendFileSync(out, `${found[1]} <= ${parent?.filename ?? '?'}\n`);
  } catch {
    // a builtin or an unresolvable request: not a package
  }
  return loaded;
};

register(
  `data:text/javascript,${encodeURIComponent(`
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  const found = ${PACKAGE}.exec(resolved.url);
  if (found) appendFileSync(${JSON.stringify(out)}, found[1] + ' <= ' + (context.parentURL ?? '?') + '\\n');
  return resolved;
}`)}`,
);
