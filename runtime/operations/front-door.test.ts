/**
 * The front door on its own: lookup, retained requests, validation, permission, deadline and abort, audit.
 */
import { Writable } from 'node:stream';
import t from 'tap';
import type { AuditEntry } from '../audit/index.js';
import { ClawboxError } from '../errors.js';
import { createLogging } from '../logging.js';
import { FrontDoor } from './front-door.js';
import { defineOperation } from './operation.js';
import { principalWithFilters } from './principal.js';

function door() {
  const lines: string[] = [];
  const sink = new Writable({
    write: (chunk, _enc, done) => {
      lines.push(String(chunk));
      done();
    },
  });
  const logger = createLogging({ level: 'info', components: {}, pretty: false, destination: sink }).forComponent('front-door');
  const records: AuditEntry[] = [];
  const frontDoor = new FrontDoor({ logger, audit: { record: async (entry) => records.push(entry) } });
  const ran: Array<{ input: unknown; principal: string; aborted: boolean }> = [];
  frontDoor.register(
    defineOperation<{ device: string; value: number }, { ok: true }>({
      name: 'thing.set',
      summary: 'test operation',
      input: {
        type: 'object',
        required: ['device', 'value'],
        additionalProperties: false,
        properties: { device: { type: 'string' }, value: { type: 'integer', minimum: 0, maximum: 10 } },
      },
      permission: (input) => `${input.device}/set`,
      changesWorld: true,
      deadlineMs: 1000,
      device: (input) => input.device,
      handler: async (input, ctx) => {
        if (input.value === 9) {
          // Waits for its deadline, then reports that it did not start.
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
          throw new ClawboxError('DEADLINE_EXCEEDED', 'not started', { not_run: true });
        }
        ran.push({ input, principal: ctx.principal.id, aborted: ctx.signal.aborted });
        return { ok: true };
      },
    }),
  );
  return { frontDoor, records, ran, lines };
}

const owner = principalWithFilters('mqtt', 'owner', ['#']);
const lampOnly = principalWithFilters('mqtt', 'panel', ['lamp/set']);

t.test('runs a valid call as its principal and audits it', async (t) => {
  const { frontDoor, records, ran } = door();
  t.same(await frontDoor.invoke('thing.set', { device: 'lamp', value: 3 }, { principal: lampOnly, source: 'mqtt', trace: 'tr-1' }), { ok: true });
  t.same(ran, [{ input: { device: 'lamp', value: 3 }, principal: 'panel', aborted: false }]);
  t.match(records, [{ op: 'thing.set', principal: { kind: 'mqtt', id: 'panel' }, trace: 'tr-1', device: 'lamp', decision: 'allowed', outcome: 'done', input_digest: /^sha256:/ }]);
  t.notOk('input' in records[0]!, 'the raw input never reaches the audit log');
});

t.test('refuses what the caller may not do, and audits the refusal', async (t) => {
  const { frontDoor, records, ran } = door();
  await t.rejects(frontDoor.invoke('thing.set', { device: 'frontdoor', value: 1 }, { principal: lampOnly, source: 'mqtt' }), {
    code: 'FORBIDDEN',
    details: { device: 'frontdoor' },
  });
  t.same(ran, [], 'the handler never ran');
  t.match(records, [{ decision: 'forbidden', outcome: 'not_run', device: 'frontdoor' }]);
});

t.test('invalid input, unknown operations and retained requests change nothing', async (t) => {
  const { frontDoor, ran, lines } = door();
  await t.rejects(frontDoor.invoke('thing.set', { device: 'lamp', value: 11 }, { principal: owner, source: 'mqtt' }), { code: 'PAYLOAD_INVALID' });
  await t.rejects(frontDoor.invoke('thing.set', { device: 'lamp', value: 1, extra: true }, { principal: owner, source: 'mqtt' }), {
    code: 'PAYLOAD_INVALID',
    message: /unknown field "extra"/,
  });
  await t.rejects(frontDoor.invoke('nope', {}, { principal: owner, source: 'mqtt' }), { code: 'REQUEST_UNKNOWN' });
  for (let i = 0; i < 3; i++) {
    await t.rejects(frontDoor.invoke('thing.set', { device: 'lamp', value: 1 }, { principal: owner, source: 'mqtt', retained: true }), {
      code: 'PAYLOAD_INVALID',
      message: /retained/,
    });
  }
  t.same(ran, [], 'nothing ran');
  t.equal(lines.filter((line) => line.includes('retained')).length, 1, 'a retained request is logged once, not at every replay');
});

t.test('the deadline aborts the signal; a handler that did not start reports not run', async (t) => {
  const { frontDoor, records } = door();
  await t.rejects(frontDoor.invoke('thing.set', { device: 'lamp', value: 9 }, { principal: owner, source: 'mqtt', deadlineMs: 20 }), {
    code: 'DEADLINE_EXCEEDED',
  });
  t.match(records, [{ outcome: 'not_run', error: { code: 'DEADLINE_EXCEEDED' } }]);
});

t.test("the caller's own signal reaches the handler", async (t) => {
  const { frontDoor } = door();
  const controller = new AbortController();
  const pending = frontDoor.invoke('thing.set', { device: 'lamp', value: 9 }, { principal: owner, source: 'http', signal: controller.signal });
  controller.abort();
  await t.rejects(pending, { code: 'DEADLINE_EXCEEDED' }, 'the handler saw the abort and gave up before starting');
});

t.test('ctx.invoke runs inner operations as the same caller', async (t) => {
  const { frontDoor, ran } = door();
  frontDoor.register(
    defineOperation<{ device: string }, unknown>({
      name: 'outer',
      summary: 'calls thing.set',
      input: { type: 'object', required: ['device'], properties: { device: { type: 'string' } } },
      permission: () => 'outer',
      changesWorld: false,
      deadlineMs: 1000,
      handler: (input, ctx) => ctx.invoke('thing.set', { device: input.device, value: 2 }),
    }),
  );
  const both = principalWithFilters('mqtt', 'panel', ['outer', 'lamp/set']);
  await frontDoor.invoke('outer', { device: 'lamp' }, { principal: both, source: 'mqtt' });
  await t.rejects(frontDoor.invoke('outer', { device: 'frontdoor' }, { principal: both, source: 'mqtt' }), { code: 'FORBIDDEN' }, 'the inner call needs its own permission');
  t.same(
    ran.map((r) => r.input),
    [{ device: 'lamp', value: 2 }],
  );
});
