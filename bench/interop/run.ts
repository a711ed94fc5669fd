/**
 * Runs both interoperability suites (3.1.1 then 5) against one broker on host:port, each after its class
 * setup, and closes every socket the tests left open.
 */
import * as v311 from './client-test311.js';
import * as v5 from './client-test5.js';
import { Client } from './paho-client.js';
import { type TestContext, type TestResult, runTests } from './unittest.js';

export type SuiteName = 'mqtt311' | 'mqtt5';

export interface SuiteResults {
  suite: SuiteName;
  source: string;
  /** null when the class setup itself failed (then no test ran). */
  setupError: string | null;
  results: TestResult[];
}

export const SUITES = {
  mqtt311: { module: v311, source: 'eclipse/paho.mqtt.testing interoperability/client_test.py @ be3ecc1' },
  mqtt5: { module: v5, source: 'eclipse/paho.mqtt.testing interoperability/client_test5.py @ 1bfd446' },
} as const;

export function testNames(suite: SuiteName): string[] {
  return SUITES[suite].module.tests.map((t) => t.name).sort();
}

export async function runSuite(
  suite: SuiteName,
  target: { host: string; port: number },
  options: { limitSeconds?: number; only?: readonly string[]; log?: (line: string) => void } = {},
): Promise<SuiteResults> {
  const { module, source } = SUITES[suite];
  const setupCtx: TestContext = {
    ...target,
    sleep: (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000)),
    note: () => {},
  };
  try {
    try {
      await module.setUpClass(setupCtx);
    } catch (error) {
      return { suite, source, setupError: (error as Error).message, results: [] };
    }
    const results = await runTests(module.tests, target, {
      limitSeconds: options.limitSeconds ?? 60,
      ...(options.only ? { only: options.only } : {}),
      ...(options.log ? { log: options.log } : {}),
    });
    return { suite, source, setupError: null, results };
  } finally {
    Client.closeAll();
  }
}
