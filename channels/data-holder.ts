/**
 * What the chat gateway keeps about a sender, as data holders for export, erasure and retention: messages
 * stored until answered (`chat-inbox`) and pairing (`chat-pairing`: approved senders and codes waiting).
 * They open the gateway's own store documents (the store hands out one instance per namespace), so a
 * change here is the gateway's change too.
 */
import type { DataHolder } from '../runtime/privacy/index.js';
import type { StateStore } from '../runtime/store/state-store.js';
import { type SenderIdentity, sessionIdOf } from './channel.js';

interface PendingMessage {
  id: string;
  session: string;
  sender: SenderIdentity;
  text: string;
  received_at: number;
}

interface PairingRequest {
  code: string;
  sender: SenderIdentity;
  requested_at: number;
}

const inbox = (store: StateStore) => store.open<{ pending: PendingMessage[] }>('chat-inbox', () => ({ pending: [] }));
const pairing = (store: StateStore) => store.open<{ approved: string[]; requests: PairingRequest[] }>('chat-pairing', () => ({ approved: [], requests: [] }));

export function chatDataHolders(store: StateStore): DataHolder[] {
  return [
    {
      name: 'chat-inbox',
      dataClass: 'chat',
      describes: 'Chat messages from platform channels, stored (<state_dir>/chat-inbox.json) from arrival until the agent has answered them.',
      exportSubject: async (subject) => ({ messages: (await inbox(store)).data.pending.filter((m) => m.session === subject) }),
      eraseSubject: async (subject) => {
        const doc = await inbox(store);
        const before = doc.data.pending.length;
        await doc.update((d) => {
          d.pending = d.pending.filter((m) => m.session !== subject);
        });
        return before - doc.data.pending.length;
      },
      sweep: async (before) => {
        const doc = await inbox(store);
        const count = doc.data.pending.length;
        if (!doc.data.pending.some((m) => m.received_at < before.getTime())) return 0;
        await doc.update((d) => {
          d.pending = d.pending.filter((m) => m.received_at >= before.getTime());
        });
        return count - doc.data.pending.length;
      },
    },
    {
      name: 'chat-pairing',
      dataClass: 'chat',
      describes:
        'Pairing (<state_dir>/chat-pairing.json): senders the owner approved (kept until erased: it is their permission to talk) and pairing codes waiting for approval.',
      exportSubject: async (subject) => {
        const { data } = await pairing(store);
        return { approved: data.approved.includes(subject), requests: data.requests.filter((r) => sessionIdOf(r.sender) === subject) };
      },
      eraseSubject: async (subject) => {
        const doc = await pairing(store);
        const count = (doc.data.approved.includes(subject) ? 1 : 0) + doc.data.requests.filter((r) => sessionIdOf(r.sender) === subject).length;
        if (count === 0) return 0;
        await doc.update((d) => {
          d.approved = d.approved.filter((s) => s !== subject);
          d.requests = d.requests.filter((r) => sessionIdOf(r.sender) !== subject);
        });
        return count;
      },
      sweep: async (before) => {
        const doc = await pairing(store);
        const old = doc.data.requests.filter((r) => r.requested_at < before.getTime()).length;
        if (old === 0) return 0;
        await doc.update((d) => {
          d.requests = d.requests.filter((r) => r.requested_at >= before.getTime());
        });
        return old;
      },
    },
  ];
}
