// Test fixture (`node --import` it): appends the URL of every module the process loads, one a line, to the
// file named by TEST_MODULE_LOG_FILE, so a test can tell which of the runtime's modules an idle box loaded.
// CommonJS files are logged as they are compiled too: a loader such as tsx takes require() calls inside
// packages past the load hook.
import { appendFileSync } from 'node:fs';
import Module, { registerHooks } from 'node:module';
import { pathToFileURL } from 'node:url';

const file = process.env.TEST_MODULE_LOG_FILE;
if (file) {
  registerHooks({
    load(url, context, nextLoad) {
      appendFileSync(file, `${url}\n`);
      return nextLoad(url, context);
    },
  });
  const compile = Module.prototype._compile;
  Module.prototype._compile = function logged(content, filename, ...rest) {
    appendFileSync(file, `${pathToFileURL(filename).href}\n`);
    return compile.call(this, content, filename, ...rest);
  };
}
