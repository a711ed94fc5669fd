/**
 * A Modbus RTU slave for tests (plain JavaScript, fast to start), run as its own process on one end of a socat pty pair (modbus-serial's
 * ServerSerial):  node devices/test-fixtures/modbus-slave-sim.mjs <port> [--unit 1]
 * Map: coil 0 = power, holding 1 = brightness (0-100), holding 2 = target temperature x10,
 *      input 0 = temperature x10 (signed).
 * Control on stdin: press (toggles coil 0), temp <t>, dump (state as JSON on stdout).
 * Prints "ready" once the port is open; exits when the port goes away.
 */
import { createInterface } from 'node:readline';
import { ServerSerial } from 'modbus-serial';

const args = process.argv.slice(2);
const path = args[0];
if (!path) {
  console.error('usage: modbus-slave-sim.mjs <port> [--unit n]');
  process.exit(64);
}
const unitIndex = args.indexOf('--unit');
const unitID = unitIndex > 0 ? Number(args[unitIndex + 1]) : 1;

const coils = [false, false, false, false];
const holding = [0, 100, 205, 0];
const input = [215, 0, 0, 0];
const inRange = (addr, table) => {
  if (addr < 0 || addr >= table.length) throw { modbusErrorCode: 0x02, msg: 'illegal data address' };
};

const server = new ServerSerial(
  {
    getCoil: (addr) => {
      inRange(addr, coils);
      return coils[addr];
    },
    getDiscreteInput: (addr) => {
      inRange(addr, coils);
      return coils[addr];
    },
    getHoldingRegister: (addr) => {
      inRange(addr, holding);
      return holding[addr];
    },
    getInputRegister: (addr) => {
      inRange(addr, input);
      return input[addr] & 0xffff;
    },
    setCoil: (addr, value) => {
      inRange(addr, coils);
      coils[addr] = value;
    },
    setRegister: (addr, value) => {
      inRange(addr, holding);
      if (addr === 1 && value > 100) throw { modbusErrorCode: 0x03, msg: 'illegal data value' };
      holding[addr] = value;
    },
  },
  { path, baudRate: 115200, unitID, interval: 5 },
);
server.on('initialized', () => process.stdout.write('ready\n'));
server.on('error', () => process.exit(0));
server._serverPath.on('close', () => process.exit(0));
server._serverPath.on('error', () => process.exit(0));

createInterface({ input: process.stdin }).on('line', (line) => {
  const [word, value] = line.trim().split(/\s+/);
  if (word === 'press') coils[0] = !coils[0];
  else if (word === 'temp' && value) input[0] = Math.round(Number(value) * 10);
  else if (word === 'dump') {
    process.stdout.write(
      `${JSON.stringify({ state: coils[0] ? 'ON' : 'OFF', brightness: holding[1], target: holding[2] / 10, temperature: input[0] / 10 })}\n`,
    );
  }
});
process.stdin.on('end', () => process.exit(0));
