import type { LoopName } from '@uigniter-demo/ics-common/process-limits';

export interface PiGains {
  kp: number;
  ki: number;
  /**
   * Integrate only while the error is within this band: a large step is taken by the
   * feedforward and the P term, and the integrator does not wind up on the way (which made
   * the temperature overshoot by a third when the loop's delay grew on emulated guests).
   */
  integrateWithin?: number;
}

/**
 * Gains tuned on the plant model (levels: Kp 3, Ki 1.2 give closed-loop
 * poles near -0.6 and -1.1 1/s; temperature: Kp 0.08, Ki 0.022, integrating within 2 °C).
 */
export const LOOP_GAINS: Record<LoopName, PiGains> = {
  level1: { kp: 3, ki: 1.2 },
  level2: { kp: 3, ki: 1.2 },
  temp: { kp: 0.08, ki: 0.022, integrateWithin: 2 },
};

/**
 * Steady-state actuator position for a setpoint (feedforward), from the
 * plant's published design: outlet q = 0.25·√h against 0.5 m³/s at a full
 * valve; heater gain 60 °C over 20 °C ambient.
 */
export function feedforward(loop: LoopName, setpoint: number): number {
  if (loop === 'temp') return (setpoint - 20) / 60;
  return 0.5 * Math.sqrt(Math.max(0, setpoint));
}

/**
 * PI with feedforward, output clamped to 0..1 and conditional integration
 * (no integration while the output is saturated in the direction of the
 * error), so a long saturation does not wind the integrator up.
 */
export class PiController {
  private integral = 0;

  constructor(
    readonly loop: LoopName,
    private readonly gains: PiGains = LOOP_GAINS[loop],
  ) {}

  update(setpoint: number, measured: number, dtS: number): number {
    const error = setpoint - measured;
    const bias = feedforward(this.loop, setpoint);
    const unclamped = bias + this.gains.kp * error + this.gains.ki * (this.integral + error * dtS);
    const saturatedHigh = unclamped > 1 && error > 0;
    const saturatedLow = unclamped < 0 && error < 0;
    // Outside the band the integrator may still unwind (an integral set by a bumpless
    // takeover, against the error), never grow.
    const inBand = this.gains.integrateWithin === undefined || Math.abs(error) <= this.gains.integrateWithin || this.integral * error < 0;
    if (!saturatedHigh && !saturatedLow && inBand) this.integral += error * dtS;
    const output = bias + this.gains.kp * error + this.gains.ki * this.integral;
    return Math.min(1, Math.max(0, output));
  }

  /** Bumpless transfer: a standby follows the actuator's actual position, so taking over does not jolt it. */
  track(setpoint: number, measured: number, actual: number): void {
    const error = setpoint - measured;
    const rest = actual - feedforward(this.loop, setpoint) - this.gains.kp * error;
    this.integral = this.gains.ki === 0 ? 0 : rest / this.gains.ki;
  }
}
