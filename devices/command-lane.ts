/**
 * A device's command lane: jobs start strictly in arrival order, up to `width()` at a time (a driver
 * that pipelines says how many of its commands may be on the wire at once; most take one). An exclusive
 * job starts only when nothing else runs and holds back everything behind it: a TOGGLE must see the
 * state every earlier command left.
 */
interface Job {
  exclusive: boolean;
  start: () => void;
}

export class CommandLane {
  readonly #waiting: Job[] = [];
  #running = 0;
  #exclusiveRunning = false;

  constructor(private readonly width: () => number) {}

  /** Jobs started and not finished. */
  get running(): number {
    return this.#running;
  }

  run<T>(job: () => Promise<T>, options: { exclusive?: boolean } = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push({
        exclusive: options.exclusive === true,
        start: () => {
          // The lane frees its place first, then the caller hears: the next job is not held up by this one's caller.
          const finish = () => {
            this.#running--;
            this.#exclusiveRunning = false;
            this.#pump();
          };
          let work: Promise<T>;
          try {
            work = job();
          } catch (error) {
            work = Promise.reject(error);
          }
          work.then(
            (value) => {
              finish();
              resolve(value);
            },
            (error: unknown) => {
              finish();
              reject(error);
            },
          );
        },
      });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#waiting.length > 0 && !this.#exclusiveRunning) {
      const next = this.#waiting[0]!;
      const free = this.#running < Math.max(1, this.width());
      if (!free || (next.exclusive && this.#running > 0)) return;
      this.#waiting.shift();
      this.#running++;
      this.#exclusiveRunning = next.exclusive;
      next.start();
    }
  }
}
