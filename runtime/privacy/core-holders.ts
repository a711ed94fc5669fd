/**
 * The data holders of the core: the audit log (records about a person, under their pseudonym) and the log
 * lines the runtime keeps in memory. Feature folders register their own (chat, conversation memory).
 */
import type { AuditLog } from '../audit/log.js';
import type { DataHolder } from './data-rights.js';
import type { Subject } from './subject.js';

/** Audit records stay after an erasure (the pseudonym key goes instead); retention deletes whole old files. */
export function auditHolder(audit: AuditLog, maxRecords = 10_000): DataHolder {
  return {
    name: 'audit',
    dataClass: 'audit',
    describes:
      'Audit log (<state_dir>/audit): who did which world-changing operation, when, and what came of it. People are named by a pseudonym whose key an erasure destroys; records stay so the chain still verifies.',
    exportSubject: async (subject) => {
      if (!audit.enabled) return { records: [] };
      const records = await audit.query({ principal: subject, limit: maxRecords });
      return { records, complete: records.length < maxRecords };
    },
    eraseSubject: async () => 0,
    sweep: async (before) => (audit.enabled ? (await audit.retireBefore(before)).length : 0),
  };
}

/** Anything holding log lines in memory: they mention people by MQTT client id, username or sender. */
export interface LogLines {
  entries(): Array<{ time: number; msg: string }>;
  removeWhere(drop: (entry: { time: number; msg: string }) => boolean): number;
}

/** A whole-word match of the subject's id (`alice` of `mqtt:alice`, or the whole `telegram:42`). */
function mentions(subject: Subject): (entry: { msg: string }) => boolean {
  const id = subject.slice(subject.indexOf(':') + 1);
  const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`(^|[^\\w-])(${literal(subject)}|${literal(id)})($|[^\\w-])`);
  return (entry) => pattern.test(entry.msg);
}

export function logLinesHolder(stores: readonly LogLines[]): DataHolder {
  return {
    name: 'logs',
    dataClass: 'logs',
    describes:
      'Recent log lines held in memory by the runtime (they may name MQTT client ids, usernames and chat senders). On the appliance journald keeps the same lines on disk for logs_days (image/overlay/etc/systemd/journald.conf.d).',
    exportSubject: async (subject) => {
      const match = mentions(subject);
      return { lines: stores.flatMap((store) => store.entries().filter(match)) };
    },
    eraseSubject: async (subject) => {
      const match = mentions(subject);
      return stores.reduce((n, store) => n + store.removeWhere(match), 0);
    },
    sweep: async (before) => stores.reduce((n, store) => n + store.removeWhere((entry) => entry.time < before.getTime()), 0),
  };
}
