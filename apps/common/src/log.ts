/**
 * One line per event on stdout: these lines end up on a VM serial console,
 * where a timestamp is the only way to correlate them with other VMs.
 */
export function log(message: string): void {
  process.stdout.write(`${new Date().toISOString()} ${message}\n`);
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
