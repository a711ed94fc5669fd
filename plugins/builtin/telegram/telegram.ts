/**
 * Telegram through the Bot API with grammY's API client: getMe to log in, getUpdates long polling to
 * receive, sendMessage to answer. The polling loop is our own rather than grammY's bot.start(), so that an
 * update is confirmed (the offset moves past it) only once the gateway has stored it: a crash or a refused
 * hand-over gets the update again from Telegram. Only private chats are read; groups and channels are
 * skipped (and confirmed). Replies longer than 4096 characters are split; a 429 answer is waited out for
 * its `retry_after`; a dropped connection is polled again with backoff.
 */
import { Api, GrammyError, HttpError } from 'grammy';
import type { Message, Update } from 'grammy/types';
import { Backoff, RetryLater, sleep, splitMessage, withRetry } from '../../channel-kit.js';
import type { ChannelContext, ChannelDefinition, ChannelOutbound } from '../../sdk.js';

export const TELEGRAM_MAX_CHARS = 4096;

/** grammY types its signals with the abort-controller polyfill; the native one is what it gets at run time. */
type GrammySignal = Parameters<Api['getMe']>[0];
const g = (signal: AbortSignal) => signal as unknown as GrammySignal;

export interface TelegramConfig {
  api_root: string;
  poll_timeout_s: number;
}

export class TelegramChannel implements ChannelDefinition {
  #api: Api | null = null;
  #ctx: ChannelContext | null = null;
  #stop = new AbortController();
  #loop: Promise<void> | null = null;
  #offset = 0;

  async connect(ctx: ChannelContext): Promise<void> {
    const token = ctx.credentials.bot_token;
    if (!token) throw new Error('the bot_token credential is missing');
    const config = ctx.config as unknown as TelegramConfig;
    this.#ctx = ctx;
    this.#stop = new AbortController();
    // The request timeout must outlast a long poll.
    const api = new Api(token, { apiRoot: config.api_root.replace(/\/+$/, ''), timeoutSeconds: config.poll_timeout_s + 30 });
    const me = await api.getMe(g(this.#stop.signal)).catch((error: unknown) => {
      throw new Error(`Telegram refused the bot token or cannot be reached: ${describe(error)}`);
    });
    // Polling and a webhook exclude each other; a webhook left from elsewhere would answer 409 to getUpdates.
    await api.deleteWebhook({ drop_pending_updates: false }, g(this.#stop.signal));
    this.#api = api;
    ctx.log.info(`logged in as @${me.username}`);
    ctx.state({ state: 'connected', detail: `@${me.username}` });
    this.#loop = this.#poll(api, ctx, config, this.#stop.signal);
  }

  async disconnect(): Promise<void> {
    this.#stop.abort(new Error('disconnecting'));
    await this.#loop?.catch(() => {});
    this.#loop = null;
    this.#api = null;
  }

  async send(to: { sender_id: string }, message: ChannelOutbound, signal: AbortSignal): Promise<void> {
    const api = this.#api;
    if (!api) throw Object.assign(new Error('Telegram is not connected'), { code: 'BUSY' });
    const text = message.error ? `⚠ ${message.text}` : message.text;
    for (const part of splitMessage(text, TELEGRAM_MAX_CHARS)) {
      await withRetry(() => api.sendMessage(to.sender_id, part, {}, g(signal)), {
        signal,
        classify: retryable,
        onWait: (ms) => this.#ctx?.log.warn(`Telegram asked to wait ${ms} ms before sending`),
      });
    }
  }

  async #poll(api: Api, ctx: ChannelContext, config: TelegramConfig, signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(1000, 30_000);
    let healthy = true;
    while (!signal.aborted) {
      let updates: Update[];
      try {
        updates = await api.getUpdates({ offset: this.#offset, timeout: config.poll_timeout_s, allowed_updates: ['message'] }, g(signal));
      } catch (error) {
        if (signal.aborted) return;
        const later = retryable(error);
        if (error instanceof GrammyError && (error.error_code === 401 || error.error_code === 404)) {
          ctx.state({ state: 'failed', detail: 'Telegram no longer accepts the bot token' });
          throw error; // the host restarts the plugin with backoff
        }
        const wait = later?.retryAfterMs ?? backoff.next();
        healthy = false;
        ctx.state({ state: 'reconnecting', detail: `getUpdates failed (${describe(error)}); again in ${Math.round(wait / 1000)} s` });
        await sleep(wait, signal).catch(() => {});
        continue;
      }
      if (!healthy) {
        healthy = true;
        backoff.reset();
        ctx.state({ state: 'connected', detail: 'polling again' });
      }
      for (const update of updates) {
        if (signal.aborted) return;
        const handed = await this.#handle(update, ctx).catch((error: unknown) => {
          ctx.log.warn(`message not handed over, Telegram will send it again: ${describe(error)}`);
          return false;
        });
        // Not handed over: leave the offset, so Telegram redelivers it (after a pause).
        if (!handed) {
          await sleep(2000, signal).catch(() => {});
          break;
        }
        this.#offset = update.update_id + 1;
      }
    }
  }

  /** One update to the gateway; true once it is dealt with (stored, refused, or not for us). */
  async #handle(update: Update, ctx: ChannelContext): Promise<boolean> {
    const message = update.message;
    if (message?.chat.type !== 'private' || !message.from || message.from.is_bot) return true;
    const media = mediaOf(message);
    const text = message.text ?? message.caption ?? '';
    const from = message.from;
    const acceptance = await ctx.receive({
      sender_id: String(from.id),
      ...(from.username || from.first_name ? { display_name: from.username ? `@${from.username}` : from.first_name } : {}),
      text,
      ...(media.length > 0 ? { media } : {}),
    });
    if (acceptance.status === 'rejected') {
      await this.send({ sender_id: String(message.chat.id) }, { text: acceptance.message }, this.#stop.signal).catch((error: unknown) =>
        ctx.log.warn(`could not tell the sender why the message was refused: ${describe(error)}`),
      );
    }
    return true;
  }
}

function mediaOf(message: Message): { kind: string }[] {
  const kinds: [keyof Message, string][] = [
    ['photo', 'photo'],
    ['voice', 'voice'],
    ['audio', 'audio'],
    ['video', 'video'],
    ['video_note', 'video'],
    ['document', 'file'],
    ['sticker', 'sticker'],
    ['animation', 'animation'],
    ['location', 'location'],
    ['contact', 'contact'],
  ];
  return kinds.filter(([key]) => message[key] !== undefined).map(([, kind]) => ({ kind }));
}

/** 429 with retry_after, a 5xx, or a network failure: worth another try. */
function retryable(error: unknown): RetryLater | null {
  if (error instanceof GrammyError) {
    if (error.error_code === 429) {
      const seconds = error.parameters.retry_after;
      return new RetryLater(error.description, typeof seconds === 'number' ? seconds * 1000 : undefined);
    }
    if (error.error_code >= 500) return new RetryLater(error.description, undefined);
    return null;
  }
  if (error instanceof HttpError) return new RetryLater(error.message, undefined);
  return null;
}

/** An error for a log line: grammY's messages name the method, never the token-bearing URL. */
function describe(error: unknown): string {
  if (error instanceof GrammyError) return `${error.error_code} ${error.description}`;
  if (error instanceof HttpError) return `network: ${String((error.error as Error)?.message ?? error.message)}`;
  return (error as Error)?.message ?? String(error);
}
