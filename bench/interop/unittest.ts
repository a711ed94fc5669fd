/**
 * The little of Python's unittest that the interoperability suites use: assertions that throw, tests run
 * one after another in name order (as unittest.main() sorts them), a pass/fail with the first line of the
 * reason per test, and a per-test time limit (the Python suite would wait forever in its `while` loops).
 */
import { isDeepStrictEqual } from 'node:util';

export class AssertionError extends Error {}

export function assertEqual(actual: unknown, expected: unknown, message?: unknown): void {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new AssertionError(`${show(actual)} != ${show(expected)}${message === undefined ? '' : ` : ${show(message)}`}`);
  }
}

export function assertTrue(condition: unknown, message?: unknown): void {
  if (!condition) throw new AssertionError(`False is not true${message === undefined ? '' : ` : ${show(message)}`}`);
}

export function assertFalse(condition: unknown, message?: unknown): void {
  if (condition) throw new AssertionError(`True is not false${message === undefined ? '' : ` : ${show(message)}`}`);
}

export function assertAlmostEqual(actual: number, expected: number, delta: number): void {
  if (Math.abs(actual - expected) > delta) throw new AssertionError(`${actual.toFixed(2)} != ${expected} within ${delta} delta`);
}

/** `with self.assertRaises(Exception):` */
export async function assertRaises(body: () => Promise<unknown>, what = 'an exception'): Promise<void> {
  try {
    await body();
  } catch {
    return;
  }
  throw new AssertionError(`${what} not raised`);
}

function show(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value, (_k, v) => (v?.type === 'Buffer' ? Buffer.from(v.data).toString() : v));
  return (text ?? String(value)).slice(0, 300);
}

/** What a test body gets: sleeps that end the test once its time is up. */
export interface TestContext {
  host: string;
  port: number;
  /** time.sleep(seconds); throws once the test ran past its limit. */
  sleep(seconds: number): Promise<void>;
  /** A line the test wants in the report (e.g. which of two allowed behaviours the broker showed). */
  note(text: string): void;
}

export interface TestCase {
  name: string;
  run(ctx: TestContext): Promise<void>;
}

export interface TestResult {
  name: string;
  passed: boolean;
  reason: string;
  notes: string[];
  seconds: number;
}

class TimeUp extends Error {}

export async function runTests(
  tests: readonly TestCase[],
  target: { host: string; port: number },
  options: { limitSeconds: number; only?: readonly string[]; log?: (line: string) => void },
): Promise<TestResult[]> {
  const results: TestResult[] = [];
  const ordered = [...tests].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const test of ordered) {
    if (options.only && !options.only.includes(test.name)) continue;
    const notes: string[] = [];
    let timeUp = false;
    const ctx: TestContext = {
      ...target,
      async sleep(seconds) {
        if (timeUp) throw new TimeUp(`still running after ${options.limitSeconds} s`);
        await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
        if (timeUp) throw new TimeUp(`still running after ${options.limitSeconds} s`);
      },
      note: (text) => notes.push(text),
    };
    const began = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        timeUp = true;
        reject(new TimeUp(`still running after ${options.limitSeconds} s`));
      }, options.limitSeconds * 1000);
    });
    let passed = true;
    let reason = '';
    try {
      await Promise.race([test.run(ctx), limit]);
    } catch (error) {
      passed = false;
      const kind = error instanceof AssertionError ? 'AssertionError' : error instanceof TimeUp ? 'Timeout' : 'Error';
      reason = `${kind}: ${(error as Error).message.split('\n')[0]}`;
    } finally {
      clearTimeout(timer);
      timeUp = true;
    }
    const seconds = Math.round((performance.now() - began) / 100) / 10;
    results.push({ name: test.name, passed, reason, notes, seconds });
    options.log?.(`  ${passed ? 'ok  ' : 'FAIL'} ${test.name} (${seconds} s)${passed ? '' : ` ${reason}`}`);
  }
  return results;
}
