// Test fixture (`node --import` it): appends the URL of every module the process loads, one a line, to the
// file named by TEST_MODULE_LOG_FILE, so a test can tell which of the runtime's modules an idle box loaded.
import { appendFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const file = process.env.TEST_MODULE_LOG_FILE;
if (file) {
  registerHooks({
    load(url, context, nextLoad) {
      appendFileSync(file, `${url}\n`);
      return nextLoad(url, context);
    },
  });
}
