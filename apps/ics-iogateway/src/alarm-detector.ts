import { randomUUID } from 'node:crypto';
import type { AlarmKind, AlarmRaised, Reading } from '@uigniter-demo/ics-common/messages';
import { LEVEL_LIMITS, SENSORS, TEMP_LIMITS, type SensorName } from '@uigniter-demo/ics-common/process-limits';

const HYSTERESIS: Record<SensorName, number> = { level1: 0.05, level2: 0.05, temp: 1 };
const LIMITS: Record<SensorName, { high: number; highHigh: number }> = {
  level1: LEVEL_LIMITS,
  level2: LEVEL_LIMITS,
  temp: TEMP_LIMITS,
};

/**
 * Raises each alarm once when its condition starts (high, high-high, frozen
 * sensor) and re-arms it when the condition has cleared (below the limit by
 * a hysteresis; a frozen sensor when its value changes again). A sensor is
 * frozen when it reports exactly the same register value for `frozenSamples`
 * consecutive samples: with the plant's noise that practically never
 * happens to a live sensor.
 */
export class AlarmDetector {
  private readonly active = new Set<string>();
  private readonly unchanged: Record<SensorName, { value: number; count: number }> = {
    level1: { value: Number.NaN, count: 0 },
    level2: { value: Number.NaN, count: 0 },
    temp: { value: Number.NaN, count: 0 },
  };

  constructor(private readonly frozenSamples = 15) {}

  check(reading: Reading, now = Date.now()): AlarmRaised[] {
    const raised: AlarmRaised[] = [];
    const raise = (kind: AlarmKind, tag: SensorName, value: number): void => {
      const key = `${kind}:${tag}`;
      if (this.active.has(key)) return;
      this.active.add(key);
      raised.push({ id: randomUUID(), kind, tag, value, seq: reading.seq, raisedAt: now });
    };
    for (const tag of SENSORS) {
      const value = reading[tag];
      const limits = LIMITS[tag];
      for (const [kind, limit] of [['high', limits.high], ['high-high', limits.highHigh]] as const) {
        if (value > limit) raise(kind, tag, value);
        else if (value < limit - HYSTERESIS[tag]) this.active.delete(`${kind}:${tag}`);
      }
      const same = this.unchanged[tag];
      if (value === same.value) {
        same.count++;
        if (same.count + 1 >= this.frozenSamples) raise('frozen', tag, value);
      } else {
        same.value = value;
        same.count = 0;
        this.active.delete(`frozen:${tag}`);
      }
    }
    return raised;
  }
}
