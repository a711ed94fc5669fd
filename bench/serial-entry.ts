/**
 * The serial-line device entry the benchmarks drive: a switch and dimmer that answers `OK POWER …` /
 * `OK DIM …` (devices/fixtures/pty-links.py's simulator), as a user would write it in the config.
 */
export function serialEntry(id: string, devicePath: string, options: { pipeline?: number; query?: boolean } = {}) {
  const pipeline = options.pipeline ?? 1;
  return {
    id,
    driver: 'serial-line',
    capabilities: ['switch', 'dimmer'],
    timeout_ms: 1000,
    serial: {
      path: devicePath,
      baud_rate: 115200,
      ...(pipeline > 1 ? { pipeline } : {}),
      commands: {
        state: { template: 'POWER {state}', response: '^OK POWER (?<state>ON|OFF)$' },
        brightness: { template: 'DIM {brightness}', response: '^OK DIM (?<brightness>\\d+)$' },
      },
      ...(options.query === false ? {} : { query: { template: 'STATUS', response: '^STATUS (?<state>ON|OFF) (?<brightness>\\d+) \\S+$' } }),
      error: '^ERR (?<message>.*)$',
    },
  };
}
