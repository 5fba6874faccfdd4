import type { Actuator } from '@uigniter-demo/ics-common/process-limits';
import type { CommandSource } from '@uigniter-demo/ics-common/messages';

export interface AppliedCommand {
  /** Plant time (ms) the command was received over Modbus. */
  t: number;
  actuator: Actuator;
  value: number;
  seq: number;
  epoch: number;
  source: CommandSource;
  latencyMs?: number;
}

export interface TraceEntry {
  /** Plant time (ms since the plant started) of the sample. */
  t: number;
  seq: number;
  level1: number;
  level2: number;
  temp: number;
  inflow1: number;
  inflow2: number;
  heater: number;
  truth: { level1: number; level2: number; temp: number };
  faults: string[];
  /** Commands received since the previous sample (applied from this step on). */
  commands: AppliedCommand[];
  /** Fault injections received since the previous sample. */
  injected: string[];
}

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
