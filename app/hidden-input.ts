/**
 * Reads lines from a terminal without echoing them (for `clawbox passwd`). The terminal is put in raw mode
 * before the first prompt, so nothing typed after a prompt shows, and restored by close() whatever happened.
 * In raw mode the terminal sends Ctrl-C and Ctrl-D as characters, so they are handled here.
 */
import type { ReadStream } from 'node:tty';

export class InputCancelled extends Error {
  override readonly name = 'InputCancelled';
  constructor(readonly how: 'interrupt' | 'end') {
    super(how === 'interrupt' ? 'interrupted' : 'input ended');
  }
}

const ENTER = new Set(['\r', '\n']);
const CTRL_C = '\u0003';
const CTRL_D = '\u0004';
const CTRL_U = '\u0015';
const ESC = '\u001b';
const ERASE = new Set(['\u007f', '\b']);

export class HiddenInput {
  /** Characters received but not read yet: a paste can hold both answers. */
  private readonly pending: string[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  private closed = false;
  private readonly onData = (chunk: string) => {
    this.pending.push(...chunk);
    this.wake?.();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.wake?.();
  };

  constructor(
    private readonly input: ReadStream,
    private readonly output: NodeJS.WritableStream,
    /** Characters kept per line: one past this shows the caller the line was too long, without holding it all. */
    private readonly maxLength = 1024,
  ) {
    input.setRawMode(true);
    input.setEncoding('utf8');
    input.on('data', this.onData);
    input.on('end', this.onEnd);
    input.resume();
  }

  private async next(): Promise<string | undefined> {
    while (this.pending.length === 0) {
      if (this.ended) return undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
    return this.pending.shift();
  }

  /** Shows `question`, reads one line without echo; throws InputCancelled on Ctrl-C, or Ctrl-D on an empty line. */
  async read(question: string): Promise<string> {
    this.output.write(question);
    let line: string[] = [];
    for (;;) {
      const c = await this.next();
      if (c === undefined || (c === CTRL_D && line.length === 0)) {
        this.output.write('\n');
        throw new InputCancelled('end');
      }
      if (c === CTRL_C) {
        this.output.write('\n');
        throw new InputCancelled('interrupt');
      }
      if (ENTER.has(c)) {
        this.output.write('\n');
        return line.join('');
      }
      if (ERASE.has(c)) line.pop();
      else if (c === CTRL_U) line = [];
      else if (c === ESC) await this.skipEscape();
      else if (c >= ' ' && line.length <= this.maxLength) line.push(c);
    }
  }

  /** Arrow and function keys send ESC [ … or ESC O …; none of it is part of a password. */
  private async skipEscape(): Promise<void> {
    const kind = await this.next();
    if (kind !== '[' && kind !== 'O') return;
    for (let c = await this.next(); c !== undefined && !(c >= '@' && c <= '~'); c = await this.next());
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.input.off('data', this.onData);
    this.input.off('end', this.onEnd);
    this.input.setRawMode(false);
    this.input.pause();
  }
}
