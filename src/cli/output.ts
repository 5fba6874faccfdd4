import { isUigniterError, messageOf, type ErrorCode } from '../core/errors.js';

/** Exit codes of the CLI, so scripts can tell failures apart. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  unavailable: 5,
  limit: 6,
  /** `vm run` / `run`: uigniter itself failed before or around the app (as docker run's 125). */
  runFailed: 125,
} as const;

export function exitCodeFor(code: ErrorCode | undefined): number {
  switch (code) {
    case 'invalid_argument':
    case 'payload_too_large':
      return EXIT.usage;
    case 'not_found':
      return EXIT.notFound;
    case 'already_exists':
    case 'conflict':
    case 'in_use':
    case 'failed_precondition':
      return EXIT.conflict;
    case 'unavailable':
    case 'unauthorized':
      return EXIT.unavailable;
    case 'limit_exceeded':
      return EXIT.limit;
    default:
      return EXIT.failure;
  }
}

/** Prints one line naming the problem and returns the exit code for it. */
export function reportError(e: unknown): number {
  const code = isUigniterError(e) ? e.code : (e as { code?: ErrorCode } | null)?.code;
  process.stderr.write(`uigniter: error: ${messageOf(e).split('\n')[0]}\n`);
  if (process.env.UIGNITER_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  return exitCodeFor(code);
}

/** A plain text table: columns padded to their widest cell. */
export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 && u > 0 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

export function printJson(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
}
