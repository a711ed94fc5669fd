// A channel plugin as a third party would write one (plain JavaScript, no clawbox imports).
import { appendFileSync } from 'node:fs';
import path from 'node:path';

let ctx;
export default {
  channel: {
    async connect(context) {
      ctx = context;
      if (context.config.qr) context.state({ state: 'pairing', detail: 'scan me', qr: context.config.qr });
      else context.state({ state: 'connected', detail: `secret has ${context.credentials.secret.length} characters` });
      // A message from the platform right away: the gateway's acceptance comes back.
      const acceptance = await context.receive({ sender_id: 'someone', text: 'hello from the platform' });
      appendFileSync(path.join(context.dataDir, 'acceptances.jsonl'), `${JSON.stringify(acceptance)}\n`);
    },
    async send(to, message) {
      appendFileSync(path.join(ctx.dataDir, 'sent.jsonl'), `${JSON.stringify({ to: to.sender_id, text: message.text })}\n`);
    },
    async disconnect() {},
  },
};
