/**
 * The update's operations, for the web app's System → Update and any other client:
 *
 *   system.update.status  bridge/request/system/update         slots, versions, last results, the running job
 *   system.update.check   bridge/request/system/update/apply   download a bundle and check it (nothing installed)
 *   system.update.apply   bridge/request/system/update/apply   download and install it into the inactive slot
 *   system.update.cancel  bridge/request/system/update/apply   stop the running check or install
 *   system.reboot         bridge/request/system/reboot         restart the box (into the new slot, when one is staged)
 *
 * Reading needs its own permission, so a token may see the update state without changing it; the rest
 * only the admin (`#`) has by default. Check and apply answer at once with the job; its progress is in
 * the status (`job`) and in the status document's `update` section.
 */
import { type AnyOperation, defineOperation } from '../runtime/operations/operation.js';
import type { UpdateService } from './service.js';

const URL_INPUT = {
  type: 'object',
  required: ['url'],
  additionalProperties: false,
  properties: { url: { type: 'string', minLength: 1, maxLength: 2048 }, allow_downgrade: { type: 'boolean' } },
} as const;
const NO_INPUT = { type: 'object', additionalProperties: false, properties: {} } as const;

export const UPDATE_BRIDGE_REQUESTS: ReadonlyArray<[string, string]> = [
  ['system/update', 'system.update.status'],
  ['system/update/check', 'system.update.check'],
  ['system/update/apply', 'system.update.apply'],
  ['system/update/cancel', 'system.update.cancel'],
  ['system/reboot', 'system.reboot'],
];

export function updateOperations(service: UpdateService): AnyOperation[] {
  return [
    defineOperation<Record<string, never>, unknown>({
      name: 'system.update.status',
      summary: 'the A/B slots (version, boot state, tries left), which runs and which boots next, the last update results, and the running update job',
      input: NO_INPUT,
      permission: () => 'bridge/request/system/update',
      changesWorld: false,
      deadlineMs: 15_000,
      handler: (_input, ctx) => service.status(ctx.signal),
    }),
    defineOperation<{ url: string; allow_downgrade?: boolean }, unknown>({
      name: 'system.update.check',
      summary: 'download an update bundle (http or https) and check it as clawbox update would (signature, architecture, version, space, sha256), installing nothing',
      input: URL_INPUT,
      permission: () => 'bridge/request/system/update/apply',
      changesWorld: false,
      deadlineMs: 10_000,
      handler: async (input) => service.start('check', input.url, input.allow_downgrade ?? false),
    }),
    defineOperation<{ url: string; allow_downgrade?: boolean }, unknown>({
      name: 'system.update.apply',
      summary: 'download an update bundle and install it into the inactive slot, which boots next with 3 tries (system.reboot to start it)',
      input: URL_INPUT,
      permission: () => 'bridge/request/system/update/apply',
      changesWorld: true,
      deadlineMs: 10_000,
      handler: async (input) => service.start('apply', input.url, input.allow_downgrade ?? false),
    }),
    defineOperation<Record<string, never>, unknown>({
      name: 'system.update.cancel',
      summary: 'stop the running update check or install; the inactive slot is left without a boot entry',
      input: NO_INPUT,
      permission: () => 'bridge/request/system/update/apply',
      changesWorld: true,
      deadlineMs: 5_000,
      handler: async () => service.cancel(),
    }),
    defineOperation<Record<string, never>, unknown>({
      name: 'system.reboot',
      summary: 'restart the box (a staged update then boots, on trial); refused while an update runs',
      input: NO_INPUT,
      permission: () => 'bridge/request/system/reboot',
      changesWorld: true,
      deadlineMs: 15_000,
      handler: (_input, ctx) => service.reboot(ctx.signal),
    }),
  ];
}
