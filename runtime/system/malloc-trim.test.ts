import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { mallocTrimAvailable, trimMalloc } from './malloc-trim.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const glibc = process.platform === 'linux' && Boolean((process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime);

t.test('on Linux with glibc the addon is built and loads (npm run build compiles it)', { skip: glibc ? false : 'no glibc here' }, async (t) => {
  t.ok(mallocTrimAvailable());
  const trimmed = trimMalloc();
  t.type(trimmed?.released, 'boolean');
  t.ok((trimmed?.ms ?? -1) >= 0);
});

t.test('a trim gives back the free pages between live allocations', { skip: glibc ? false : 'no glibc here' }, async (t) => {
  // A fresh Node: 4,000 native buffers of 16 KiB (malloc'd, below glibc's mmap threshold), every eighth kept
  // alive, so the freed ones are holes below live allocations that free() never returns on its own.
  const body = `
const { trimMalloc } = await import(${JSON.stringify(path.join(here, 'malloc-trim.ts'))});
let buffers = Array.from({ length: 4000 }, () => Buffer.alloc(16 * 1024, 1));
const kept = buffers.filter((_, i) => i % 8 === 0);
buffers = undefined;
for (let i = 0; i < 3; i++) gc();
const before = process.memoryUsage.rss();
const trimmed = trimMalloc();
const after = process.memoryUsage.rss();
console.log(JSON.stringify({ kept: kept.length, before, after, released: trimmed.released }));`;
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', body], { encoding: 'utf8', timeout: 60_000 });
  const result = JSON.parse(out) as { kept: number; before: number; after: number; released: boolean };
  const givenBackMb = (result.before - result.after) / 2 ** 20;
  t.equal(result.released, true, 'glibc says memory went back');
  // 3,500 freed buffers are ~55 MB of whole free pages.
  t.ok(givenBackMb > 30, `RSS went down by ${givenBackMb.toFixed(1)} MB`);
});
