import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/**
 * Whether a process exists and is not a zombie. kill(pid, 0) alone succeeds for a zombie
 * (a killed process its parent has not reaped yet), which would make a dead daemon or VMM
 * look alive.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S ...": the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The argv of a running process, split; empty when it is gone. */
export async function processArgv(pid: number): Promise<string[]> {
  const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return raw ? raw.replace(/\0$/, '').split('\0') : [];
}
