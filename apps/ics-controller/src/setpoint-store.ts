import { mkdirSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describeError, log } from '@uigniter-demo/common/log';
import { DEFAULT_SETPOINTS, LOOPS, SETPOINT_RANGE, type LoopName } from '@uigniter-demo/ics-common/process-limits';

export type Setpoints = Record<LoopName, number>;

/** Setpoints kept in `DATA_DIR/setpoints.json` (written to a temp file, fsynced, renamed). */
export class SetpointStore {
  readonly file: string;
  private current: Setpoints;

  constructor(dataDir: string) {
    this.file = join(dataDir, 'setpoints.json');
    this.current = this.load();
  }

  get values(): Setpoints {
    return { ...this.current };
  }

  set(loop: LoopName, value: number): boolean {
    if (this.current[loop] === value) return false;
    this.current = { ...this.current, [loop]: value };
    this.save();
    return true;
  }

  private load(): Setpoints {
    const setpoints = { ...DEFAULT_SETPOINTS };
    let raw: string;
    try {
      raw = readFileSync(this.file, 'utf8');
    } catch {
      log(`no ${this.file}: default setpoints ${JSON.stringify(setpoints)}`);
      return setpoints;
    }
    try {
      const stored = JSON.parse(raw) as Record<string, unknown>;
      for (const loop of LOOPS) {
        const value = stored[loop];
        const range = SETPOINT_RANGE[loop];
        if (typeof value === 'number' && value >= range.min && value <= range.max) setpoints[loop] = value;
        else log(`${this.file}: ignoring ${loop} = ${JSON.stringify(value)} (outside ${range.min}..${range.max})`);
      }
      log(`setpoints from ${this.file}: ${JSON.stringify(setpoints)}`);
    } catch (err) {
      log(`${this.file} unreadable (${describeError(err)}): default setpoints`);
    }
    return setpoints;
  }

  private save(): void {
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.current) + '\n');
    const fd = openSync(tmp, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.file);
  }
}
