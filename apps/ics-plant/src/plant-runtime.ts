import { performance } from 'node:perf_hooks';
import { log } from '@uigniter-demo/common/log';
import { encodeReadings, type RegisterCommand } from '@uigniter-demo/ics-common/modbus-map';
import type { AppliedCommand } from '@uigniter-demo/ics-common/plant-api';
import type { Fault } from './faults.js';
import { LatencyMonitor } from './latency-monitor.js';
import { ProcessModel, type Sample } from './process-model.js';
import { TraceBuffer } from './trace-buffer.js';

export interface PlantOptions {
  seed: number;
  periodMs: number;
  deadlineMs: number;
}

/**
 * Runs the process model in real time: one step per period on a drift-free
 * schedule, publishing each sample to the Modbus register image, the trace
 * and the latency monitor. Commands and faults received between two steps
 * take effect at the next step (so the trajectory depends only on which
 * step they arrive before).
 */
export class PlantRuntime {
  readonly model: ProcessModel;
  readonly trace = new TraceBuffer();
  readonly latency: LatencyMonitor;
  /** Holding registers 0..9: the latest sample. */
  registers: number[];
  private readonly origin = performance.now();
  private pendingCommands: AppliedCommand[] = [];
  private pendingInjections: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastSample: Sample | undefined;
  private lastSampleTime = 0;

  constructor(readonly options: PlantOptions) {
    this.model = new ProcessModel(options.seed, { dtS: options.periodMs / 1000 });
    this.latency = new LatencyMonitor(options.deadlineMs);
    this.registers = encodeReadings({ seq: 0, sampleTime: 0, level1: 0, level2: 0, temp: 0, inflow1: 0, inflow2: 0, heater: 0 });
  }

  /** Milliseconds since the plant started, on its monotonic clock. */
  now(): number {
    return Math.round((performance.now() - this.origin) * 10) / 10;
  }

  start(): void {
    this.stepOnce();
    this.scheduleNext();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  applyCommand(command: RegisterCommand): AppliedCommand {
    const t = this.now();
    this.model.command(command.actuator, command.value);
    const applied: AppliedCommand = { t, actuator: command.actuator, value: command.value, seq: command.seq, epoch: command.epoch, source: command.source };
    if (command.source === 'controller') {
      const latencyMs = this.latency.recordCommand(command.actuator, command.seq, t);
      if (latencyMs !== undefined) applied.latencyMs = latencyMs;
    } else {
      log(`command from ${command.source}: ${command.actuator} = ${command.value} (reading ${command.seq})`);
    }
    this.pendingCommands.push(applied);
    return applied;
  }

  injectFault(fault: Fault): void {
    this.model.inject(fault);
    const description = JSON.stringify(fault);
    this.pendingInjections.push(description);
    log(`fault injected at step ${this.model.step}: ${description}`);
  }

  latestSample(): { sample: Sample | undefined; t: number } {
    return { sample: this.lastSample, t: this.lastSampleTime };
  }

  private scheduleNext(): void {
    const period = this.options.periodMs;
    const next = (this.model.step + 1) * period;
    this.timer = setTimeout(() => {
      this.stepOnce();
      this.scheduleNext();
    }, Math.max(0, next - this.now()));
  }

  private stepOnce(): void {
    const sample = this.model.advance();
    const t = this.now();
    this.lastSample = sample;
    this.lastSampleTime = t;
    this.registers = encodeReadings({ ...sample, sampleTime: t });
    this.latency.recordSample(sample.seq, t);
    this.latency.checkGap(t);
    this.trace.push({
      t,
      seq: sample.seq,
      level1: round(sample.level1, 4),
      level2: round(sample.level2, 4),
      temp: round(sample.temp, 3),
      inflow1: round(sample.inflow1, 4),
      inflow2: round(sample.inflow2, 4),
      heater: round(sample.heater, 4),
      truth: { level1: round(sample.truth.level1, 4), level2: round(sample.truth.level2, 4), temp: round(sample.truth.temp, 3) },
      faults: sample.faults,
      commands: this.pendingCommands,
      injected: this.pendingInjections,
    });
    this.pendingCommands = [];
    this.pendingInjections = [];
  }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
