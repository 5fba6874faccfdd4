import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setCommandDelegate, settleCommand, type CommandOutcome, type RunOptions, type RunResult } from './exec.js';

/**
 * Runs host commands (ip, nft, bridge, ...) from a small helper process rather than from the
 * daemon itself.
 *
 * Why: Node's `spawn` forks the calling process (libuv 1.46 on Linux uses fork, not vfork or
 * posix_spawn). Forking the daemon copies the page tables of its heap, and until the child
 * has exec'd, every page the daemon's threads write (its GC runs concurrently) is copied on
 * write. That cost grows with the daemon's memory, and it is paid several times per VM
 * create and delete. Measured on this host: a spawn from a 147 MiB process cost that process
 * 4-6 ms of CPU and blocked its event loop; through this helper it costs the caller 0.1 ms
 * and the helper about 1.2 ms (`bench/spawn` reproduces it). Nothing on npm spawns without
 * forking the caller short of a native addon, so this is our own: a forked Node process
 * that spawns on request over the IPC channel.
 *
 * The helper is shared by every daemon in the process (`useCommandHelper` counts them) and
 * goes when the last one releases it; it exits by itself when its parent dies. A command
 * whose output must be streamed (`onStdout`) still runs from the caller.
 */

/** One command for the helper: what `run` got, without the callbacks. */
export interface HelperRequest {
  id: number;
  cmd: string;
  args: string[];
  input?: string | Buffer;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export interface HelperReply {
  id: number;
  outcome: CommandOutcome;
}

interface Pending {
  cmd: string;
  args: readonly string[];
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

const CHILD = fileURLToPath(new URL('./command-helper-child.js', import.meta.url));

export class CommandHelper {
  private child: ChildProcess | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  /** The helper's pid (started if it is not running). */
  pid(): number {
    if (this.closed) throw new Error('command helper: closed');
    return this.process().pid!;
  }

  run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    if (this.closed) return Promise.reject(new Error('command helper: closed'));
    const child = this.process();
    const id = this.nextId++;
    const req: HelperRequest = {
      id,
      cmd,
      args: [...args],
      ...(opts.input !== undefined ? { input: opts.input } : {}),
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      ...(opts.env !== undefined ? { env: opts.env } : {}),
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
    };
    return new Promise<RunResult>((resolve, reject) => {
      this.pending.set(id, { cmd, args, resolve, reject });
      // Only a command in flight keeps the process alive (an idle helper does not).
      child.ref();
      child.channel?.ref();
      child.send(req, (e) => {
        if (e) this.fail(id, new Error(`command helper: cannot send ${cmd}: ${e.message}`));
      });
    });
  }

  /** Ends the helper; commands in flight reject. */
  close(): void {
    this.closed = true;
    const child = this.child;
    this.child = null;
    if (child?.connected) child.disconnect();
    this.failAll(new Error('command helper: closed'));
  }

  private process(): ChildProcess {
    if (this.child) return this.child;
    // Its own flags, not the parent's (a test runner's or profiler's), and a small heap.
    const child = fork(CHILD, [], { serialization: 'advanced', execArgv: ['--max-semi-space-size=1'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    child.unref();
    child.channel?.unref();
    child.on('message', (m: HelperReply) => this.settle(m));
    const gone = (why: string): void => {
      if (this.child !== child) return;
      this.child = null;
      this.failAll(new Error(`command helper (pid ${child.pid}) ${why}; the command may or may not have run`));
    };
    child.on('exit', (code, signal) => gone(`exited (${signal ?? `code ${code}`})`));
    child.on('error', (e) => gone(`failed: ${e.message}`));
    this.child = child;
    return child;
  }

  private settle(m: HelperReply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    this.idle();
    const r = settleCommand(p.cmd, p.args, m.outcome);
    if (r instanceof Error) p.reject(r);
    else p.resolve(r);
  }

  private fail(id: number, e: Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.idle();
    p.reject(e);
  }

  private failAll(e: Error): void {
    for (const id of [...this.pending.keys()]) this.fail(id, e);
  }

  private idle(): void {
    if (this.pending.size > 0) return;
    this.child?.unref();
    this.child?.channel?.unref();
  }
}

let shared: { helper: CommandHelper; users: number } | null = null;

/**
 * Routes `run` (util/exec) through the shared helper until the returned release is called
 * as many times as this was; then the helper ends and commands spawn from the caller again.
 */
export function useCommandHelper(): () => void {
  if (!shared) {
    const helper = new CommandHelper();
    shared = { helper, users: 0 };
    setCommandDelegate((cmd, args, opts) => helper.run(cmd, args, opts));
  }
  const mine = shared;
  mine.users++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--mine.users > 0 || shared !== mine) return;
    shared = null;
    setCommandDelegate(null);
    mine.helper.close();
  };
}

/** The shared helper while one is in use (tests look at its pid), else null. */
export function commandHelperInUse(): CommandHelper | null {
  return shared?.helper ?? null;
}
