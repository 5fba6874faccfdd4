interface Entry {
  value: string;
  /** Epoch ms after which the entry is gone; undefined = permanent. */
  expiresAt: number | undefined;
}

/**
 * An in-memory map whose entries may expire. The registry does not need to
 * survive a restart: every service re-publishes itself within TTL/3.
 */
export class TtlStore {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  set(key: string, value: string, ttlSec?: number): void {
    const expiresAt = ttlSec === undefined ? undefined : this.now() + ttlSec * 1000;
    this.entries.set(key, { value, expiresAt });
  }

  get(key: string): string | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (this.expired(entry)) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Removes `key`; true if it was live. */
  delete(key: string): boolean {
    const live = this.get(key) !== undefined;
    this.entries.delete(key);
    return live;
  }

  /** Live entries sorted by key. */
  list(): Array<[string, string]> {
    this.sweep();
    return [...this.entries.entries()]
      .map(([key, entry]): [string, string] => [key, entry.value])
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Drops expired entries (a dead service's key) and returns their keys. */
  sweep(): string[] {
    const removed: string[] = [];
    for (const [key, entry] of this.entries) {
      if (this.expired(entry)) {
        this.entries.delete(key);
        removed.push(key);
      }
    }
    return removed;
  }

  private expired(entry: Entry): boolean {
    return entry.expiresAt !== undefined && entry.expiresAt <= this.now();
  }
}
