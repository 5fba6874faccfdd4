/**
 * Runs `run` every `ms` until stopped, never two at once (a slow run is not stacked: the
 * next tick that finds it still going is skipped). The timer does not keep the process up.
 */
export class Periodic {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly ms: number,
    private readonly run: () => Promise<void>,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.run().finally(() => (this.running = null));
    }, this.ms);
    this.timer.unref();
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
