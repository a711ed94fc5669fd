/**
 * Splits what a serial port reads into lines at a delimiter: what @serialport/parser-readline does, without
 * a Transform stream between the port and the driver (one stream layer fewer for every chunk read). Each
 * line is decoded as UTF-8 whole, so a character split across two reads stays intact. A partial line that
 * grows past `maxLineBytes` without its delimiter is dropped: a device that never ends its line must not
 * grow memory without bound.
 */
const EMPTY = Buffer.alloc(0);

export class LineSplitter {
  readonly #delimiter: Buffer;
  /** The start of a line whose delimiter has not come yet. */
  #rest: Buffer = EMPTY;

  constructor(
    delimiter: string,
    private readonly onLine: (line: string) => void,
    private readonly onOverflow: (bytes: number) => void = () => {},
    private readonly maxLineBytes = 64 * 1024,
  ) {
    if (delimiter.length === 0) throw new TypeError('a line delimiter cannot be empty');
    this.#delimiter = Buffer.from(delimiter, 'utf8');
  }

  push(chunk: Buffer): void {
    const data = this.#rest.length === 0 ? chunk : Buffer.concat([this.#rest, chunk]);
    let start = 0;
    for (let at = data.indexOf(this.#delimiter); at !== -1; at = data.indexOf(this.#delimiter, start)) {
      const line = data.toString('utf8', start, at);
      start = at + this.#delimiter.length;
      this.onLine(line);
    }
    const rest = data.length - start;
    if (rest > this.maxLineBytes) {
      this.#rest = EMPTY;
      this.onOverflow(rest);
      return;
    }
    // Copied: a small remainder must not keep the whole read buffer alive.
    this.#rest = rest === 0 ? EMPTY : Buffer.from(data.subarray(start));
  }
}
