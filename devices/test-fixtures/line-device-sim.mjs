/**
 * A serial line-protocol device for tests and the benchmark (plain JavaScript: it starts in a few
 * milliseconds, and tests start many), run as its own process on one end of a socat
 * pty pair:  node devices/test-fixtures/line-device-sim.mjs <port> [--power ON] [--dim 40] [--temp 21.5]
 *
 * Protocol (one command per line, "\n"):
 *   POWER ON|OFF   -> OK POWER <ON|OFF>
 *   DIM <0-100>    -> OK DIM <n>        (else ERR out of range)
 *   STATUS         -> STATUS <ON|OFF> <dim> <temp>
 *   anything else  -> ERR unknown command
 * Unsolicited: EVENT POWER <ON|OFF> (wall switch), TEMP <t> (sensor push).
 * Control on stdin (one word per line): press, temp <t>, dump (prints the state as JSON on stdout).
 * Prints "ready" on stdout once the port is open,
 * and exits when the port goes away (socat killed = cable pulled).
 */
import { createInterface } from 'node:readline';
import { ReadlineParser } from '@serialport/parser-readline';
import { SerialPort } from 'serialport';

const args = process.argv.slice(2);
const path = args[0];
if (!path) {
  console.error('usage: line-device-sim.mjs <port> [--power ON|OFF] [--dim n] [--temp t]');
  process.exit(64);
}
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i > 0 ? (args[i + 1] ?? fallback) : fallback;
};
let power = option('power', 'OFF');
let dim = Number(option('dim', '100'));
let temp = Number(option('temp', '21.5'));

const port = new SerialPort({ path, baudRate: 115200, autoOpen: false, lock: false });
const send = (line) => port.write(`${line}\n`);

function answer(line) {
  const [verb = '', arg = ''] = line.trim().split(/\s+/);
  switch (verb.toUpperCase()) {
    case 'POWER':
      if (arg !== 'ON' && arg !== 'OFF') return 'ERR bad power';
      power = arg;
      return `OK POWER ${power}`;
    case 'DIM': {
      const n = Number(arg);
      if (!Number.isInteger(n) || n < 0 || n > 100) return 'ERR out of range';
      dim = n;
      return `OK DIM ${dim}`;
    }
    case 'STATUS':
      return `STATUS ${power} ${dim} ${temp}`;
    default:
      return 'ERR unknown command';
  }
}

port.open((error) => {
  if (error) {
    console.error(`cannot open ${path}: ${error.message}`);
    process.exit(1);
  }
  const parser = port.pipe(new ReadlineParser({ delimiter: '\n' }));
  parser.on('data', (line) => {
    if (line.trim() !== '') send(answer(line));
  });
  port.on('close', () => exit('port closed'));
  port.on('error', (e) => exit(`port error ${e.message}`));
  process.stdout.write('ready\n');
});

createInterface({ input: process.stdin }).on('line', (line) => {
  const [word, value] = line.trim().split(/\s+/);
  if (word === 'press') {
    power = power === 'ON' ? 'OFF' : 'ON';
    send(`EVENT POWER ${power}`);
  } else if (word === 'dump') {
    process.stdout.write(`${JSON.stringify({ state: power, brightness: dim, temperature: temp })}\n`);
  } else if (word === 'temp' && value) {
    temp = Number(value);
    send(`TEMP ${temp}`);
  }
});
process.stdin.on('end', () => exit('stdin ended'));

function exit(why) {
  if (process.env.SIM_DEBUG) console.error(`line-device-sim ${path}: exiting: ${why}`);
  process.exit(0);
}
