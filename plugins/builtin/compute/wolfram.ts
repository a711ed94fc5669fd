/**
 * Wolfram|Alpha's LLM API (https://www.wolframalpha.com/api/v1/llm-api?input=…&appid=…&maxchars=…): a
 * plain-text answer for what mathjs cannot compute (facts, data, natural-language maths). The AppID is a
 * secret: it travels only in the request URL and is never part of an error message. Documented answers:
 * 200 with the result text; 501 when the input cannot be interpreted (the body may carry suggestions);
 * 400 when the input is missing; 403 when the AppID is missing or invalid.
 */
import { PluginError } from '../../sdk.js';

export interface WolframConfig {
  app_id: string;
  url: string;
  timeout_ms: number;
  max_chars: number;
}

export interface WolframAnswer {
  text: string;
  /** The Wolfram|Alpha results page the text ends with, when it names one. */
  url?: string;
}

const MAX_BODY_BYTES = 256 * 1024;

export async function askWolfram(config: WolframConfig, input: string, signal?: AbortSignal): Promise<WolframAnswer> {
  const url = new URL(config.url);
  url.searchParams.set('input', input);
  url.searchParams.set('appid', config.app_id);
  url.searchParams.set('maxchars', String(config.max_chars));
  const timeout = AbortSignal.timeout(config.timeout_ms);
  let response: Response;
  try {
    response = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout, redirect: 'error' });
  } catch (error) {
    if (timeout.aborted) throw new PluginError('DEADLINE_EXCEEDED', `Wolfram|Alpha did not answer within ${config.timeout_ms} ms`);
    if (signal?.aborted) throw new PluginError('DEADLINE_EXCEEDED', 'the call was cancelled');
    // Never the URL: it carries the AppID.
    const cause = (error as { cause?: { code?: string; errors?: Array<{ code?: string }> } }).cause;
    throw new PluginError('DEVICE_UNAVAILABLE', `Wolfram|Alpha cannot be reached (${cause?.code ?? cause?.errors?.[0]?.code ?? 'network error'})`);
  }
  const body = (await readLimited(response)).trim();
  switch (response.status) {
    case 200:
      return { text: body.slice(0, config.max_chars), ...urlOf(body) };
    case 501:
      throw new PluginError('NOT_FOUND', `Wolfram|Alpha did not understand "${input.slice(0, 100)}"${body ? `: ${firstLine(body)}` : ''}`);
    case 400:
      throw new PluginError('PAYLOAD_INVALID', 'Wolfram|Alpha: the input is missing or malformed');
    case 401:
    case 403:
      throw new PluginError('FORBIDDEN', 'Wolfram|Alpha refused the AppID (missing or invalid: check plugins.config.compute.wolfram.app_id)');
    default:
      throw new PluginError('DEVICE_ERROR', `Wolfram|Alpha answered HTTP ${response.status}`);
  }
}

async function readLimited(response: Response): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      break;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim())?.trim().slice(0, 200) ?? '';
}

function urlOf(text: string): { url?: string } {
  const match = /https:\/\/www\.wolframalpha\.com\/input\?i=\S+/.exec(text);
  return match ? { url: match[0] } : {};
}
