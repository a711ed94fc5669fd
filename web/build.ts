/**
 * Builds the web app (web/src) into static files with esbuild: dist/web/index.html and
 * dist/web/assets/<name>-<hash>.{js,css}, minified, no source maps, nothing loaded from elsewhere. Prints
 * each file's size raw and gzipped (what a phone downloads) and writes dist/web/build-report.json.
 *
 *   tsx web/build.ts [OUT_DIR]
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface WebBuildReport {
  files: { name: string; bytes: number; gzip_bytes: number }[];
  total_bytes: number;
  total_gzip_bytes: number;
}

export async function buildWebApp(outDir: string, options: { quiet?: boolean } = {}): Promise<WebBuildReport> {
  rmSync(outDir, { recursive: true, force: true });
  const assets = path.join(outDir, 'assets');
  mkdirSync(assets, { recursive: true });
  const result = await build({
    entryPoints: [path.join(here, 'src', 'main.tsx')],
    outdir: assets,
    bundle: true,
    splitting: true,
    format: 'esm',
    minify: true,
    target: ['es2021'],
    entryNames: '[name]-[hash]',
    chunkNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const outputs = Object.keys(result.metafile.outputs).map((file) => path.basename(file));
  const script = outputs.find((f) => f.startsWith('main-') && f.endsWith('.js'));
  const style = outputs.find((f) => f.startsWith('main-') && f.endsWith('.css'));
  if (!script || !style) throw new Error(`web build produced no main script or style: ${outputs.join(', ')}`);
  const template = readFileSync(path.join(here, 'src', 'index.html'), 'utf8');
  writeFileSync(path.join(outDir, 'index.html'), template.replace('%SCRIPT%', `/assets/${script}`).replace('%STYLE%', `/assets/${style}`));
  const files = ['index.html', ...outputs.map((f) => `assets/${f}`)].map((name) => {
    const body = readFileSync(path.join(outDir, name));
    return { name, bytes: body.length, gzip_bytes: gzipSync(body, { level: 9 }).length };
  });
  const report: WebBuildReport = {
    files,
    total_bytes: files.reduce((n, f) => n + f.bytes, 0),
    total_gzip_bytes: files.reduce((n, f) => n + f.gzip_bytes, 0),
  };
  writeFileSync(path.join(outDir, 'build-report.json'), `${JSON.stringify(report, null, 2)}\n`);
  if (!options.quiet) {
    const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
    for (const f of files) console.log(`web  ${f.name.padEnd(34)} ${kb(f.bytes).padStart(10)}  gzip ${kb(f.gzip_bytes).padStart(9)}`);
    console.log(`web  ${'total'.padEnd(34)} ${kb(report.total_bytes).padStart(10)}  gzip ${kb(report.total_gzip_bytes).padStart(9)}`);
  }
  return report;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildWebApp(path.resolve(process.argv[2] ?? path.join(here, '..', 'dist', 'web')));
}
