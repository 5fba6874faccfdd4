/**
 * Lines the guest init prints on the serial console (see guest/init/init.c):
 *   @uigniter {"event":"started","pid":26,"uptimeMs":883}
 *   @uigniter {"event":"ready","uptimeMs":2407}
 *   @uigniter {"event":"stopping","uptimeMs":5535}
 *   @uigniter {"event":"exit","code":0,"uptimeMs":5585}
 * uptimeMs is the guest's time since its kernel started.
 */
export type GuestEvent =
  | { event: 'started'; pid: number; uptimeMs: number }
  | { event: 'ready'; uptimeMs: number }
  | { event: 'stopping'; uptimeMs: number }
  | { event: 'exit'; code: number; signal?: number; error?: string; uptimeMs: number };

export const EVENT_PREFIX = '@uigniter ';

export function parseGuestEvent(line: string): GuestEvent | null {
  const at = line.indexOf(EVENT_PREFIX);
  if (at < 0) return null;
  try {
    const v = JSON.parse(line.slice(at + EVENT_PREFIX.length)) as { event?: unknown };
    if (v.event === 'started' || v.event === 'ready' || v.event === 'stopping' || v.event === 'exit') {
      return v as GuestEvent;
    }
  } catch {
    /* a line that only looks like ours */
  }
  return null;
}
