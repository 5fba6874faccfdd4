/**
 * Calls wake() once per episode, not once per held request. An episode starts when a
 * request is held and none runs; it ends when a replica is ready (end()), when wake()
 * rejects, or once it is older than the hold timeout: by then every request it held has
 * answered 503, and a replica that never came up gets another chance with the next request.
 */
export class WakeEpisodes {
  private current: { startedAt: number } | undefined;

  constructor(
    private readonly wake: () => Promise<void>,
    private readonly handlers: { accepted: () => void; rejected: (err: unknown) => void },
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts an episode unless one younger than maxAgeMs runs. */
  ensure(maxAgeMs: number): void {
    const now = this.now();
    if (this.current !== undefined && now - this.current.startedAt < maxAgeMs) return;
    const episode = { startedAt: now };
    this.current = episode;
    let call: Promise<void>;
    try {
      call = Promise.resolve(this.wake());
    } catch (err) {
      call = Promise.reject(err);
    }
    call.then(
      () => {
        if (this.current === episode) this.handlers.accepted();
      },
      (err: unknown) => {
        if (this.current !== episode) return;
        this.current = undefined;
        this.handlers.rejected(err);
      },
    );
  }

  /** A replica is ready: the next held request starts a new episode. */
  end(): void {
    this.current = undefined;
  }
}
