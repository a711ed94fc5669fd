/** The Telegram channel plugin: grammY's Bot API client behind the clawbox channel interface (telegram.ts). */
import { defineChannel } from '../../sdk.js';
import { TelegramChannel } from './telegram.js';

export default defineChannel({ channel: new TelegramChannel() });
