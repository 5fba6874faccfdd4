import type { TraceEntry } from '@uigniter-demo/ics-common/plant-api';

/** The plant's trajectory: the last `capacity` samples (10 minutes at 100 ms by default). */
export class TraceBuffer {
  private readonly entries: TraceEntry[] = [];

  constructor(private readonly capacity = 6000) {}

  push(entry: TraceEntry): void {
    this.entries.push(entry);
    if (this.entries.length > this.capacity) this.entries.splice(0, this.entries.length - this.capacity);
  }

  since(t: number, limit = 6000): TraceEntry[] {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.entries[mid] as TraceEntry).t <= t) lo = mid + 1;
      else hi = mid;
    }
    return this.entries.slice(lo, lo + limit);
  }

  latest(): TraceEntry | undefined {
    return this.entries[this.entries.length - 1];
  }
}
