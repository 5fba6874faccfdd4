import type { ServiceProcess } from '@uigniter-demo/native';

export interface ScaleDecision {
  at: number;
  from: number;
  to: number;
  reason: string;
}

/**
 * Native stand-in for the daemon's autoscaler on the `http-json` metric:
 * reads `{"pending": n}` from the historian every `pollMs`, starts the alarm
 * handler when n > 0 and it is at zero, and stops it after `idleMs` with
 * nothing pending.
 */
export class AlarmScaler {
  readonly decisions: ScaleDecision[] = [];
  private timer: NodeJS.Timeout | undefined;
  private idleSince: number | undefined;
  private busy = false;

  constructor(
    private readonly handler: ServiceProcess,
    private readonly pendingUrl: string,
    private readonly pollMs = 250,
    private readonly idleMs = 3000,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.pollMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const res = await fetch(this.pendingUrl, { signal: AbortSignal.timeout(2000) });
      const { pending } = (await res.json()) as { pending: number };
      if (pending > 0) {
        this.idleSince = undefined;
        if (!this.handler.running) {
          this.decisions.push({ at: Date.now(), from: 0, to: 1, reason: `${pending} alarms pending` });
          this.handler.start();
          await this.handler.waitHealthy();
        }
      } else if (this.handler.running) {
        this.idleSince ??= Date.now();
        if (Date.now() - this.idleSince >= this.idleMs) {
          this.decisions.push({ at: Date.now(), from: 1, to: 0, reason: `nothing pending for ${this.idleMs} ms` });
          this.idleSince = undefined;
          await this.handler.stop();
        }
      }
    } catch {
      // Historian not answering: decide next time.
    } finally {
      this.busy = false;
    }
  }
}
