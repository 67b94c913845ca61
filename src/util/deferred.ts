/**
 * Request/response correlation: a promise whose resolve/reject are held by someone else, and a
 * map of them keyed by id, each with its own deadline. No I/O; imports nothing of ours.
 */

/** A promise plus the functions that settle it. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  readonly resolve: (value: T) => void;
  readonly reject: (reason: Error) => void;
}

/** Creates a Deferred (Promise.withResolvers is Node 22+). */
export function createDeferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

interface Entry<T> {
  readonly deferred: Deferred<T>;
  readonly timer: NodeJS.Timeout;
}

/**
 * `Map<id, Deferred>` with a timer per entry. Every entry ends exactly once: settled by `resolve`,
 * by its deadline, or by `rejectAll` (a disconnect) — and leaves the map when it ends.
 */
export class PendingMap<T> {
  private readonly entries = new Map<string, Entry<T>>();

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /**
   * Registers `id`; its promise rejects with `onTimeout()` after `timeoutMs`. The caller checks
   * `has(id)` first: a duplicate id is a bug and throws here.
   */
  add(id: string, timeoutMs: number, onTimeout: () => Error): Promise<T> {
    if (this.entries.has(id)) throw new Error(`duplicate pending id ${id}`);
    const deferred = createDeferred<T>();
    const timer = setTimeout(() => {
      this.entries.delete(id);
      deferred.reject(onTimeout());
    }, timeoutMs);
    this.entries.set(id, { deferred, timer });
    return deferred.promise;
  }

  /** Settles `id` with `value`; false when nothing waits for it (late or unknown answer). */
  resolve(id: string, value: T): boolean {
    const entry = this.take(id);
    entry?.deferred.resolve(value);
    return entry !== undefined;
  }

  /** Removes `id` and stops its timer; the entry, or undefined when nothing waits for it. */
  private take(id: string): Entry<T> | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    this.entries.delete(id);
    clearTimeout(entry.timer);
    return entry;
  }

  /** Rejects every entry at once and empties the map (the connection is gone). */
  rejectAll(makeError: () => Error): void {
    if (this.entries.size === 0) return;
    const entries = [...this.entries.values()];
    this.entries.clear();
    for (const entry of entries) {
      clearTimeout(entry.timer);
      entry.deferred.reject(makeError());
    }
  }
}
