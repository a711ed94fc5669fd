/**
 * A `models pull` in another process reaches the running runtime through its progress records: the
 * status document's `model.downloads` and the `model.download` event. A record whose process is gone
 * reads as `interrupted`.
 */
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import t from 'tap';
import { makeTestContext } from '../app/testing/test-context.js';
import { type DownloadView, DownloadProgressWriter, downloadId, downloadsDir, readDownloads } from './download-progress.js';
import { ModelService } from './service.js';

function progress(uri: string, downloaded: number) {
  return { uri, phase: 'downloading' as const, file: 'm.gguf', downloaded_bytes: downloaded, total_bytes: 1000, speed_bps: 10, eta_s: 5 };
}

t.test('the runtime shows a pull running in another process', async (t) => {
  const test = makeTestContext({ config: { models: [] } });
  const service = new ModelService({ downloadPollMs: 25 });
  t.teardown(async () => {
    await service.stop();
    test.cleanup();
  });
  const events: DownloadView[] = [];
  test.ctx.bus.on('model.download', (e) => events.push(e));
  // The JSON log lines, as journald would keep them.
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    }),
  );
  await service.start({ ...test.ctx, logger: () => logger });

  const writer = new DownloadProgressWriter(test.ctx.stateDir, 'https://example.org/m.gguf', 'm');
  writer.update(progress('https://example.org/m.gguf', 0));
  writer.update(progress('https://example.org/m.gguf', 500)); // within a second: not written
  await writer.flush();
  const seen = async (check: (e: DownloadView) => boolean) => {
    const deadline = Date.now() + 20_000;
    while (!events.some(check) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    return events.find(check);
  };
  t.match(await seen((e) => e.phase === 'downloading'), { name: 'm', uri: 'https://example.org/m.gguf', downloaded_bytes: 0, total_bytes: 1000 });
  const snapshot = await test.ctx.status.snapshot();
  t.match((snapshot.model as { downloads: unknown[] }).downloads, [{ name: 'm', phase: 'downloading', total_bytes: 1000 }]);
  t.notOk('pid' in ((snapshot.model as { downloads: object[] }).downloads[0] ?? {}), 'the process id stays inside');

  writer.update({ ...progress('https://example.org/m.gguf', 1000), phase: 'done' });
  await writer.flush();
  t.ok(await seen((e) => e.phase === 'done'), 'the finished pull is reported');
  t.match(
    lines.filter((l) => l.event === 'model.download').map((l) => l.phase),
    ['downloading', 'done'],
    'the JSON log has a line per step',
  );
  t.match(lines.find((l) => l.phase === 'done'), { event: 'model.download', model: 'm', uri: 'https://example.org/m.gguf', msg: /downloaded and added to the config/ });
});

t.test('a record left by a process that is gone reads as interrupted', async (t) => {
  const test = makeTestContext({});
  t.teardown(() => test.cleanup());
  // A child that wrote nothing but its pid: once it has exited, that pid belongs to no running pull.
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(child.stdout);
  const writer = new DownloadProgressWriter(test.ctx.stateDir, 'hf:a/b:Q4_K_M', 'b');
  writer.update(progress('hf:a/b:Q4_K_M', 300));
  await writer.flush();
  const file = path.join(downloadsDir(test.ctx.stateDir), `${downloadId("hf:a/b:Q4_K_M")}.json`);
  await writeFile(file, JSON.stringify({ ...JSON.parse(await readFile(file, 'utf8')), pid: deadPid }));
  t.match(await readDownloads(test.ctx.stateDir), [{ phase: 'interrupted', downloaded_bytes: 300 }]);
  await writeFile(path.join(downloadsDir(test.ctx.stateDir), "0123456789abcdef.json"), "{not json");
  t.equal((await readDownloads(test.ctx.stateDir)).length, 1, 'a broken record is skipped');
});
