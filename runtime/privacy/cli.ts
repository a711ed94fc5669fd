/**
 * `clawbox data inventory | export | erase | opt-out | opt-in`: the owner's side of people's data rights,
 * from a shell on the appliance. It asks the running runtime over its HTTP API (runtime/http/api-client.ts),
 * so the runtime, which holds the data, does the work.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { ConfigLoader } from '../config/load.js';
import { ClawboxError, ERROR_CATALOG, toClawboxError } from '../errors.js';
import { runtimeApi } from '../http/api-client.js';
import type { DataExport, ErasureReport, InventoryEntry } from './data-rights.js';
import { parseSubject } from './subject.js';

export const DATA_HELP = `Usage:
  clawbox data inventory [--json]                      what personal data the box keeps, where, how long
  clawbox data export --subject S [--out FILE]         everything kept about S, as one JSON bundle
  clawbox data erase --subject S --yes                 delete S's messages, sessions and pairing; audit
                                                       records stay but no longer name S
  clawbox data opt-out --subject S                     never send S's data to an outbound processor (CCPA)
  clawbox data opt-in --subject S                      undo opt-out
S: "<channel>:<sender>" (e.g. telegram:4711), "mqtt:<user or client id>" or "http:<user>".
Options: --config FILE, --url URL, --token TOKEN (as for "clawbox channels"). The runtime must be running.
`;

export interface DataCommandIo {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  env?: NodeJS.ProcessEnv;
}

export async function runDataCommand(args: readonly string[], loadConfig: ConfigLoader['loadConfig'], io: DataCommandIo = {}): Promise<number> {
  const out = io.stdout ?? ((text: string) => void process.stdout.write(text));
  const err = io.stderr ?? ((text: string) => void process.stderr.write(text));
  const env = io.env ?? process.env;
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        subject: { type: 'string' },
        out: { type: 'string' },
        yes: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        config: { type: 'string' },
        url: { type: 'string' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    const [command, ...rest] = positionals;
    if (values.help || command === undefined || command === 'help') {
      out(DATA_HELP);
      return command === undefined && !values.help ? ERROR_CATALOG.USAGE.exit : 0;
    }
    if (rest.length > 0) throw new ClawboxError('USAGE', `unexpected arguments: ${rest.join(' ')}`);
    const subject = () => {
      if (values.subject === undefined) throw new ClawboxError('USAGE', `data ${command} needs --subject`);
      return parseSubject(values.subject);
    };
    const api = runtimeApi(loadConfig, { ...values, timeoutMs: 120_000 }, env);
    switch (command) {
      case 'inventory': {
        const answer = (await api('GET', '/api/data/inventory')) as { holders: InventoryEntry[]; status: { region: string | null } };
        if (values.json) out(`${JSON.stringify(answer, null, 2)}\n`);
        else {
          out(`data region: ${answer.status.region ?? '(not set: nothing is sent to outbound processors)'}\n`);
          for (const h of answer.holders) out(`${h.holder} [${h.data_class}, ${h.retention_days === null ? 'kept until erased' : h.retention_days === 0 ? 'kept' : `${h.retention_days} days`}]\n  ${h.describes}\n`);
        }
        return 0;
      }
      case 'export': {
        const bundle = (await api('GET', `/api/data/export?subject=${encodeURIComponent(subject())}`)) as DataExport;
        const text = `${JSON.stringify(bundle, null, 2)}\n`;
        if (values.out) {
          await writeFile(values.out, text, { mode: 0o600 });
          err(`wrote the export of ${bundle.subject} to ${values.out}\n`);
        } else out(text);
        return 0;
      }
      case 'erase': {
        const who = subject();
        if (!values.yes) throw new ClawboxError('USAGE', `erasing ${who} cannot be undone; run again with --yes`);
        const report = (await api('POST', '/api/data/erase', { subject: who })) as ErasureReport;
        const removed = Object.entries(report.removed).map(([holder, n]) => `${holder}: ${n}`).join(', ');
        out(`erased ${who}: ${removed || 'nothing was kept'}; audit records ${report.pseudonym_key_destroyed ? 'no longer name them' : 'never named them'}\n`);
        return 0;
      }
      case 'opt-out':
      case 'opt-in': {
        const who = subject();
        await api('POST', '/api/data/opt-out', { subject: who, opted_out: command === 'opt-out' });
        out(command === 'opt-out' ? `${who} opted out: their data is not sent to outbound processors\n` : `${who} opted back in\n`);
        return 0;
      }
      default:
        throw new ClawboxError('USAGE', `unknown data command "${command}"\n${DATA_HELP}`);
    }
  } catch (error) {
    const e = toClawboxError(error);
    err(`clawbox data: ${e.code}: ${e.message}\n`);
    return e.spec.exit;
  }
}
