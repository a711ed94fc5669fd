/**
 * The data-rights operations and their HTTP routes. Owner-only in practice: each needs the permission
 * `bridge/request/data/<action>`, which the owner's token (`#`) has and an MQTT user only when its ACL says
 * so. Each is recorded in the audit log by its handler, without the subject: the front door's own record
 * would keep the input's digest and the answer (the export itself), which would name the person again.
 *
 *   GET  /api/data/inventory                 data.inventory  -> what is kept, where, for how long
 *   GET  /api/data/export?subject=S          data.export     -> one JSON bundle about S
 *   POST /api/data/erase    {"subject":S}    data.erase      -> what was removed
 *   POST /api/data/opt-out  {"subject":S, "opted_out":true|false}   data.opt_out (CCPA: do not share)
 */
import type { HttpMethod, RouteHandler, RouteRequest } from '../http/http-server.js';
import { okEnvelope } from '../operations/envelope.js';
import type { FrontDoor } from '../operations/front-door.js';
import { type AnyOperation, defineOperation } from '../operations/operation.js';
import type { DataRights } from './data-rights.js';
import { parseSubject } from './subject.js';

const SUBJECT_SCHEMA = { type: 'string', minLength: 3, maxLength: 300, description: '"<channel>:<sender>", "mqtt:<user>" or "http:<user>"' } as const;

export function dataOperations(rights: DataRights): AnyOperation[] {
  return [
    defineOperation<Record<string, never>, unknown>({
      name: 'data.inventory',
      summary: 'what personal data the box keeps, where, and for how long',
      input: { type: 'object', additionalProperties: false, properties: {} },
      permission: () => 'bridge/request/data/inventory',
      changesWorld: false,
      deadlineMs: 5_000,
      handler: async () => ({ holders: rights.inventory(), status: rights.status() }),
    }),
    defineOperation<{ subject: string }, unknown>({
      name: 'data.export',
      summary: 'everything the box keeps about one person, as one JSON bundle',
      input: { type: 'object', additionalProperties: false, required: ['subject'], properties: { subject: SUBJECT_SCHEMA } },
      permission: () => 'bridge/request/data/export',
      changesWorld: false,
      deadlineMs: 60_000,
      handler: async ({ subject }, ctx) => {
        const bundle = await rights.export(parseSubject(subject), ctx.signal);
        await ctx.audit({ op: 'data.export', outcome: 'done', decision: 'allowed' });
        return bundle;
      },
    }),
    defineOperation<{ subject: string }, unknown>({
      name: 'data.erase',
      summary: "delete one person's messages, sessions and pairing; their audit records stay but no longer name them",
      input: { type: 'object', additionalProperties: false, required: ['subject'], properties: { subject: SUBJECT_SCHEMA } },
      permission: () => 'bridge/request/data/erase',
      changesWorld: false,
      deadlineMs: 60_000,
      handler: async ({ subject }, ctx) => {
        const report = await rights.erase(parseSubject(subject), ctx.signal);
        await ctx.audit({ op: 'data.erase', outcome: 'done', decision: 'allowed', ack: { removed: report.removed } });
        return report;
      },
    }),
    defineOperation<{ subject: string; opted_out: boolean }, unknown>({
      name: 'data.opt_out',
      summary: "record that a person opted out of (or back into) sharing their data with outbound processors",
      input: {
        type: 'object',
        additionalProperties: false,
        required: ['subject', 'opted_out'],
        properties: { subject: SUBJECT_SCHEMA, opted_out: { type: 'boolean' } },
      },
      permission: () => 'bridge/request/data/opt_out',
      changesWorld: false,
      deadlineMs: 10_000,
      handler: async ({ subject, opted_out }, ctx) => {
        const answer = await rights.setOptOut(parseSubject(subject), opted_out);
        await ctx.audit({ op: 'data.opt_out', outcome: 'done', decision: 'allowed' });
        return answer;
      },
    }),
  ];
}

export function registerDataRoutes(http: { addRoute(method: HttpMethod, path: string, handler: RouteHandler): () => void }, frontDoor: FrontDoor): () => void {
  const run = (operation: string, input: unknown, request: RouteRequest) =>
    frontDoor.invoke(operation, input, { principal: request.principal, source: 'http', signal: request.signal });
  const removers = [
    http.addRoute('GET', '/api/data/inventory', async (request) => okEnvelope(await run('data.inventory', {}, request))),
    http.addRoute('GET', '/api/data/export', async (request) =>
      okEnvelope(await run('data.export', { subject: request.url.searchParams.get('subject') ?? '' }, request)),
    ),
    http.addRoute('POST', '/api/data/erase', async (request) => okEnvelope(await run('data.erase', await request.json(4096), request))),
    http.addRoute('POST', '/api/data/opt-out', async (request) => okEnvelope(await run('data.opt_out', await request.json(4096), request))),
  ];
  return () => {
    for (const remove of removers) remove();
  };
}
