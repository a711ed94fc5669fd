/**
 * `npm run bench:data-erase`: how long `clawbox data erase` takes for a person's MQTT sessions as the
 * broker's store grows. The erasure deletes the person's sessions and then compacts the whole LevelDB, so
 * that the deleted records leave the disk; the compaction's cost grows with everything else stored.
 *
 * Per store size (other people's queued messages): a real broker on a temp LevelDB, anonymous clients
 * with persistent sessions holding the queue, and users whose session (one subscription, QUEUED messages)
 * is erased one at a time. Baseline in the same run and store: the erasure of a user with nothing stored
 * (no session, so no compaction): the fixed cost of the path.
 *
 * Environment: BENCH_SIZES (other people's queued messages, default "0,10000,100000"), BENCH_REPEATS (5),
 * BENCH_QUEUED (the erased person's queued messages, 20). Prints a table; writes
 * bench/results/data-erase-<time>.json.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeClient, connect, startTestBroker } from '../app/testing/broker.js';
import { hashPassword } from '../runtime/auth/password.js';
import { machineFacts, median } from './stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SIZES = (process.env.BENCH_SIZES ?? '0,10000,100000').split(',').map(Number);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 5);
const QUEUED = Number(process.env.BENCH_QUEUED ?? 20);
/** Other people's messages are spread over this many persistent sessions. */
const OTHER_SESSIONS = 50;

const log = (line: string) => process.stderr.write(`${line}\n`);

interface Row {
  other_queued_messages: number;
  /** The broker's LevelDB folder before the erasures. */
  store_mb: number;
  erase_ms: number[];
  baseline_ms: number[];
  erase_median_ms: number;
  baseline_median_ms: number;
}

/** LevelDB keeps its files flat in one folder. */
function dirSizeMb(dir: string): number {
  const bytes = readdirSync(dir).reduce((sum, name) => sum + statSync(path.join(dir, name)).size, 0);
  return Math.round((bytes / 2 ** 20) * 10) / 10;
}

async function measure(size: number): Promise<Row> {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'clawbox-bench-erase-'));
  const password = 'bench-secret';
  const hash = await hashPassword(password);
  const users = Array.from({ length: REPEATS * 2 }, (_, i) => ({ username: `person${i}`, password_hash: hash, publish: ['#'], subscribe: ['#'] }));
  const tb = await startTestBroker({ stateDir, config: { broker: { anonymous: 'loopback', users } } });
  try {
    // Other people: persistent sessions on other/#, filled with `size` messages in all.
    for (let i = 0; i < OTHER_SESSIONS; i++) {
      const client = await connect(tb.url, { clientId: `other-${i}`, clean: false });
      await client.subscribeAsync('other/#', { qos: 1 });
      await closeClient(client);
    }
    // The people to erase: one persistent session each on mine/# (the second half never connect: baseline).
    for (let i = 0; i < REPEATS; i++) {
      const client = await connect(tb.url, { clientId: `phone-${i}`, clean: false, username: `person${i}`, password });
      await client.subscribeAsync('mine/#', { qos: 1 });
      await closeClient(client);
    }
    const pub = await connect(tb.url);
    // Random bytes (200 characters): LevelDB compresses its tables, and real payloads do not shrink to nothing.
    const payload = () => randomBytes(150).toString('base64');
    const rounds = Math.ceil(size / OTHER_SESSIONS);
    for (let i = 0; i < rounds; i++) await pub.publishAsync('other/fill', payload(), { qos: 1 });
    for (let i = 0; i < QUEUED; i++) await pub.publishAsync('mine/fill', payload(), { qos: 1 });
    await closeClient(pub);
    log(`  ${size} queued for others, ${QUEUED} for each person; erasing...`);
    const storeMb = dirSizeMb(path.join(stateDir, 'broker'));

    const signal = new AbortController().signal;
    const erase: number[] = [];
    const baseline: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      // Alternate, so that the machine's other jobs load both alike.
      let start = performance.now();
      const gone = await tb.broker.eraseMqttSessionsOf(`person${i}`, signal);
      erase.push(performance.now() - start);
      if (gone !== 1) throw new Error(`expected one session of person${i}, erased ${gone}`);
      start = performance.now();
      await tb.broker.eraseMqttSessionsOf(`person${REPEATS + i}`, signal);
      baseline.push(performance.now() - start);
    }
    const round = (n: number) => Math.round(n * 10) / 10;
    return {
      other_queued_messages: rounds * OTHER_SESSIONS,
      store_mb: storeMb,
      erase_ms: erase.map(round),
      baseline_ms: baseline.map(round),
      erase_median_ms: round(median(erase)),
      baseline_median_ms: round(median(baseline)),
    };
  } finally {
    await tb.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

const loadBefore = os.loadavg();
const rows: Row[] = [];
for (const size of SIZES) rows.push(await measure(size));

const header = ['others queued', 'store MB', 'erase median ms', 'baseline median ms', 'erase runs ms'];
const lines = rows.map((r) => [String(r.other_queued_messages), String(r.store_mb), String(r.erase_median_ms), String(r.baseline_median_ms), r.erase_ms.join(' ')]);
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
const facts = machineFacts(loadBefore);
console.log(`\ndata erase of one person's MQTT session (${QUEUED} queued messages), ${REPEATS} runs per store size`);
console.log(`(baseline: the erasure of a person with nothing stored; load average ${facts.load_average_before[0]} -> ${facts.load_average_after[0]})`);
console.log(line(header));
for (const l of lines) console.log(line(l));
const out = path.join(ROOT, 'bench', 'results');
mkdirSync(out, { recursive: true });
const file = path.join(out, `data-erase-${new Date().toISOString().replaceAll(':', '-').replace('.', '-')}.json`);
writeFileSync(file, `${JSON.stringify({ benchmark: 'data-erase', machine: facts, repeats: REPEATS, queued: QUEUED, results: rows }, null, 2)}\n`);
console.log(`results: ${path.relative(ROOT, file)}`);
