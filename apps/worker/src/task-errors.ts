/** Another worker owns the task now (our lease expired and was re-leased, or it finished). */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
}

/** The task can never succeed, whoever runs it (input missing, corrupted or undecodable). */
export class PermanentTaskError extends Error {
  override name = 'PermanentTaskError';
}

/** The worker is shutting down and ran out of grace time for the current task. */
export class ShutdownAbort extends Error {
  override name = 'ShutdownAbort';
}
