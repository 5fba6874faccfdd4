import { spawn } from 'node:child_process';

/** A host command that failed; the message carries its stderr so errors name the cause. */
export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    const detail = stderr.trim().split('\n').slice(-3).join(' | ');
    super(`${command} failed (exit ${exitCode ?? 'signal'})${detail ? `: ${detail}` : ''}`);
    this.name = 'CommandError';
  }
}

export interface RunOptions {
  input?: string | Buffer;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Called with every chunk of stdout, for progress displays. */
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** How a command ended: its exit (code, or null when a signal ended it) and output, or why it did not start. */
export type CommandOutcome = { code: number | null; stdout: string; stderr: string } | { spawnError: { code?: string; message: string } };

/** What `run` resolves with, or the error it rejects with, for an outcome: one rule for every way of running. */
export function settleCommand(cmd: string, args: readonly string[], o: CommandOutcome): RunResult | Error {
  if ('spawnError' in o) {
    if (o.spawnError.code === 'ENOENT') return new CommandError(`${cmd} (not installed?)`, null, o.spawnError.message);
    return Object.assign(new Error(o.spawnError.message), o.spawnError.code ? { code: o.spawnError.code } : {});
  }
  if (o.code === 0) return { stdout: o.stdout, stderr: o.stderr };
  return new CommandError([cmd, ...args].join(' ').slice(0, 300), o.code, o.stderr || o.stdout);
}

/** Another way to run commands that have no output callbacks (see `command-helper.ts`); null: spawn here. */
export type CommandDelegate = (cmd: string, args: readonly string[], opts: RunOptions) => Promise<RunResult>;
let delegate: CommandDelegate | null = null;

/** Routes `run` through `d` (null: back to spawning in this process). */
export function setCommandDelegate(d: CommandDelegate | null): void {
  delegate = d;
}

/** Runs a command without a shell and resolves with its output, or rejects with CommandError. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  if (delegate && !opts.onStdout && !opts.onStderr) return delegate(cmd, args, opts);
  return spawnHere(cmd, args, opts);
}

/** `run` by spawning the command from this process. */
export async function spawnHere(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = settleCommand(cmd, args, await spawnOutcome(cmd, args, opts));
  if (r instanceof Error) throw r;
  return r;
}

/** Spawns the command from this process and resolves with how it ended (never rejects). */
export function spawnOutcome(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<CommandOutcome> {
  return new Promise((resolve) => {
    const spawnError = (e: NodeJS.ErrnoException): CommandOutcome => ({ spawnError: { message: e.message, ...(e.code ? { code: e.code } : {}) } });
    let child;
    try {
      child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (e) {
      // spawn throws (rather than emitting 'error') on arguments it cannot pass, e.g. a NUL byte.
      return resolve(spawnError(e as NodeJS.ErrnoException));
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.stdout.on('data', (c: Buffer) => {
      out.push(c);
      opts.onStdout?.(c.toString());
    });
    child.stderr.on('data', (c: Buffer) => {
      err.push(c);
      opts.onStderr?.(c.toString());
    });
    const settle = (o: CommandOutcome): void => {
      if (timer) clearTimeout(timer);
      resolve(o);
    };
    child.on('error', (e: NodeJS.ErrnoException) => settle(spawnError(e)));
    child.on('close', (code) => settle({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    child.stdin.on('error', () => {
      /* the command may exit before reading its input; its exit code tells */
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Finds an executable on PATH, or null. */
export async function which(cmd: string): Promise<string | null> {
  const { access } = await import('node:fs/promises');
  const { constants } = await import('node:fs');
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const candidate = `${dir}/${cmd}`;
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* keep looking */
    }
  }
  for (const dir of ['/usr/sbin', '/sbin']) {
    try {
      await access(`${dir}/${cmd}`, constants.X_OK);
      return `${dir}/${cmd}`;
    } catch {
      /* keep looking */
    }
  }
  return null;
}
