/** The WhatsApp channel plugin: Baileys behind the clawbox channel interface (whatsapp.ts). */
import { defineChannel } from '../../sdk.js';
import { WhatsAppChannel } from './whatsapp.js';

export default defineChannel({ channel: new WhatsAppChannel() });
