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

/** The broker's side (runtime/broker/session-erasure.ts): one person's sessions by their MQTT username. */
export interface MqttSessions {
  mqttSessionsOf(owner: string, signal: AbortSignal): Promise<unknown[]>;
  eraseMqttSessionsOf(owner: string, signal: AbortSignal): Promise<number>;
}

/**
 * `mqtt:<username>` (or `mqtt:anonymous@<address>`): the persistent sessions of the clients they logged in
 * with, and their connected clients. Other subjects have none.
 */
export function mqttSessionsHolder(broker: MqttSessions): DataHolder {
  const ownerOf = (subject: Subject): string | null => (subject.startsWith('mqtt:') ? subject.slice('mqtt:'.length) : null);
  return {
    name: 'mqtt-sessions',
    dataClass: 'identity',
    describes:
      "MQTT sessions in the broker's store (<state_dir>/broker): the client ids a person logs in with, their subscriptions, the messages queued for them while away, and their will. Kept until the client ends its session (a clean connect, or its MQTT 5 session expiry); an erasure disconnects their clients and deletes it.",
    exportSubject: async (subject, signal) => {
      const owner = ownerOf(subject);
      return { sessions: owner === null ? [] : await broker.mqttSessionsOf(owner, signal) };
    },
    eraseSubject: async (subject, signal) => {
      const owner = ownerOf(subject);
      return owner === null ? 0 : broker.eraseMqttSessionsOf(owner, signal);
    },
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
