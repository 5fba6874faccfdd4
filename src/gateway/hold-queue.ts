/**
 * Requests held while a service has no ready replica: bounded, first in first out, each
 * with its own deadline. Knows nothing of HTTP; the entry point decides what a timeout answers.
 */
export class HoldQueue<T> {
  /** Map order is insertion order: drain() releases the oldest first. */
  private readonly waiting = new Map<T, NodeJS.Timeout>();

  get size(): number {
    return this.waiting.size;
  }

  /** Holds `value` until drain() or remove(), or calls onTimeout after timeoutMs; false when `limit` are held already. */
  hold(value: T, limit: number, timeoutMs: number, onTimeout: (value: T) => void): boolean {
    if (this.waiting.size >= limit) return false;
    const timer = setTimeout(() => {
      this.waiting.delete(value);
      onTimeout(value);
    }, timeoutMs);
    this.waiting.set(value, timer);
    return true;
  }

  /** Lets go of one value (its client left) without calling its timeout. */
  remove(value: T): void {
    clearTimeout(this.waiting.get(value));
    this.waiting.delete(value);
  }

  /** Every held value, oldest first; the queue is empty afterwards. */
  drain(): T[] {
    const values = [...this.waiting.keys()];
    for (const timer of this.waiting.values()) clearTimeout(timer);
    this.waiting.clear();
    return values;
  }
}
