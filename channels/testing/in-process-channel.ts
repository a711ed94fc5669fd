/**
 * A channel plugin's definition run inside the test process, as the gateway sees a channel: for a
 * platform whose lowest seam is an object (Baileys' socket factory), which a plugin process cannot be
 * handed. It wires the same ChannelContext the plugin runner gives (receive → the gateway's listener,
 * state → the status), so the conformance suite runs it unchanged.
 */
import type { ChannelContext, ChannelDefinition, ChannelStateUpdate } from '../../plugins/sdk.js';
import type { MessageListener, OutboundMessage } from '../channel.js';
import type { PlatformChannel } from '../platforms.js';

export class InProcessChannel implements PlatformChannel {
  readonly local = false;
  #listener: MessageListener | null = null;
  #state: ChannelStateUpdate | { state: 'stopped' | 'starting' } = { state: 'stopped' };
  readonly states: string[] = [];

  constructor(
    readonly name: string,
    readonly definition: ChannelDefinition,
    readonly options: { config: Record<string, unknown>; credentials: Record<string, string>; dataDir: string },
  ) {}

  onMessage(listener: MessageListener): void {
    this.#listener = listener;
  }

  async connect(): Promise<void> {
    this.#set({ state: 'starting' });
    const silent = () => {};
    const ctx: ChannelContext = {
      name: this.name,
      config: this.options.config,
      credentials: this.options.credentials,
      dataDir: this.options.dataDir,
      log: { debug: silent, info: silent, warn: silent, error: silent },
      receive: async (message) => {
        const listener = this.#listener;
        if (!listener) throw Object.assign(new Error('not connected to the gateway'), { code: 'BUSY' });
        return listener({
          sender: { channel: this.name, sender_id: message.sender_id, ...(message.display_name ? { display_name: message.display_name } : {}) },
          text: message.text,
          ...(message.media ? { media: message.media } : {}),
        });
      },
      state: (update) => this.#set(update),
    };
    await this.definition.connect(ctx);
  }

  async send(sessionId: string, message: OutboundMessage): Promise<void> {
    const senderId = sessionId.slice(sessionId.indexOf(':') + 1);
    await this.definition.send({ sender_id: senderId }, { text: message.text }, new AbortController().signal);
  }

  async disconnect(): Promise<void> {
    this.#listener = null;
    await this.definition.disconnect();
    this.#set({ state: 'stopped' });
  }

  status(): { name: string; state: string; detail: string | null; qr: string | null } {
    const s = this.#state as ChannelStateUpdate;
    return { name: this.name, state: s.state, detail: s.detail ?? null, qr: s.qr ?? null };
  }

  #set(update: ChannelStateUpdate | { state: 'stopped' | 'starting' }): void {
    this.#state = update;
    this.states.push(update.state);
  }
}
