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

/** Runs a command without a shell and resolves with its output, or rejects with CommandError. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) {
      timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    }
    child.stdout.on('data', (c: Buffer) => {
      out.push(c);
      opts.onStdout?.(c.toString());
    });
    child.stderr.on('data', (c: Buffer) => {
      err.push(c);
      opts.onStderr?.(c.toString());
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      reject(e.code === 'ENOENT' ? new CommandError(`${cmd} (not installed?)`, null, e.message) : e);
    });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      const stdout = Buffer.concat(out).toString();
      const stderr = Buffer.concat(err).toString();
      if (code === 0) resolve({ stdout, stderr });
      else reject(new CommandError([cmd, ...args].join(' ').slice(0, 300), code, stderr || stdout));
    });
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
