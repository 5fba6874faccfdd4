import { LOOP_ACTUATOR, LOOPS, type LoopName } from '@uigniter-demo/ics-common/process-limits';
import type { Command, Reading } from '@uigniter-demo/ics-common/messages';
import { PiController } from './pi-controller.js';
import type { Setpoints } from './setpoint-store.js';

/** The three PI loops; each reading gives three commands (active) or just tracks the plant (standby). */
export class ControlLoops {
  private readonly controllers = new Map<LoopName, PiController>(LOOPS.map((loop) => [loop, new PiController(loop)]));
  private lastSampleTime: number | undefined;

  compute(reading: Reading, setpoints: Setpoints, epoch: number, by: string): Array<{ loop: LoopName; command: Command }> {
    const dtS = this.lastSampleTime === undefined ? 0.1 : Math.min(1, Math.max(0.01, (reading.sampleTime - this.lastSampleTime) / 1000));
    this.lastSampleTime = reading.sampleTime;
    const sentAt = Date.now();
    return LOOPS.map((loop) => {
      const pi = this.controllers.get(loop) as PiController;
      const value = Math.round(pi.update(setpoints[loop], reading[loop], dtS) * 1000) / 1000;
      return { loop, command: { value, seq: reading.seq, epoch, source: 'controller', by, sentAt } };
    });
  }

  track(reading: Reading, setpoints: Setpoints): void {
    this.lastSampleTime = reading.sampleTime;
    for (const loop of LOOPS) {
      (this.controllers.get(loop) as PiController).track(setpoints[loop], reading[loop], reading[LOOP_ACTUATOR[loop]]);
    }
  }
}
