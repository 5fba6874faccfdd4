import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** What one process has used so far: CPU time and resident memory, read from /proc. */
export interface ProcessSample {
  /** user + system CPU time, in clock ticks */
  cpuTicks: number;
  rssBytes: number;
}

/** Linux's USER_HZ: /proc reports CPU times in these ticks (100 on every Linux port we run on). */
const TICKS_PER_SECOND = 100;
const PAGE_BYTES = 4096;

/**
 * One process's CPU time and RSS, or null when it is gone. Reads /proc/PID/stat and
 * /proc/PID/statm only: cheap enough to sample hundreds of VMMs every few seconds (PSS would
 * need smaps_rollup, which walks every mapping).
 */
export async function sampleProcess(pid: number): Promise<ProcessSample | null> {
  try {
    // Synchronous: each file is a few hundred bytes the kernel writes in microseconds; read
    // through the thread pool, each cost four hand-offs (open, stat, read, close).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const statm = readFileSync(`/proc/${pid}/statm`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const rssPages = Number(statm.split(' ')[1]);
    if (!Number.isFinite(utime) || !Number.isFinite(stime) || !Number.isFinite(rssPages)) return null;
    return { cpuTicks: utime + stime, rssBytes: rssPages * PAGE_BYTES };
  } catch {
    return null;
  }
}

/** Percent of one core used between two samples taken `ms` apart. */
export function cpuPercent(before: Pick<ProcessSample, 'cpuTicks'>, after: Pick<ProcessSample, 'cpuTicks'>, ms: number): number {
  if (ms <= 0) return 0;
  const seconds = (after.cpuTicks - before.cpuTicks) / TICKS_PER_SECOND;
  return Math.max(0, (seconds * 1000 * 100) / ms);
}

/**
 * A process's proportional set size in bytes (shared pages divided among the processes that
 * map them: a clone's part of its snapshot's memory file, a cold VM's guest RAM it touched,
 * QEMU's code cache), or null when it is gone. smaps_rollup walks every mapping: a fraction
 * of a millisecond for a QEMU, so it is sampled seconds apart, not on every request.
 */
export async function processPssBytes(pid: number): Promise<number | null> {
  try {
    const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = /^Pss:\s+(\d+) kB$/m.exec(text);
    return kb ? Number(kb[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** The host's available memory (MemAvailable of /proc/meminfo), MiB; null when unreadable. */
export function hostAvailableMiB(): number | null {
  try {
    const kb = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return kb ? Number(kb[1]) / 1024 : null;
  } catch {
    return null;
  }
}
