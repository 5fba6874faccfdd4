import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { VmmExit, VmmProcess } from '../../core/ports.js';
import { processAlive as pidAlive } from '../../util/process.js';
import type { QmpClient } from './qmp-client.js';

/** True when /proc/<pid>/cmdline is a QEMU started for this VM, not a recycled pid. */
export async function isOurQemu(pid: number, vmId: string): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes(`uigniter-${vmId},`) && cmdline.includes('qemu-system');
}

const CTRL_ALT_DEL = { keys: ['ctrl', 'alt', 'delete'].map((k) => ({ type: 'qcode', data: k })) };

/**
 * A running QEMU. Its end is seen through the child's exit event when we launched it, or,
 * for a VM adopted after a daemon restart (not our child), through the QMP socket closing
 * plus a check that the pid is gone.
 */
export class QemuProcess implements VmmProcess {
  readonly exited: Promise<VmmExit>;
  private done = false;
  private watch: NodeJS.Timeout | null = null;
  private settle!: (e: VmmExit) => void;

  constructor(
    readonly pid: number,
    private readonly qmp: QmpClient,
    child: ChildProcess | null,
  ) {
    this.exited = new Promise((resolve) => (this.settle = resolve));
    void this.exited.then(() => {
      this.done = true;
      if (this.watch) clearInterval(this.watch);
      qmp.close();
    });
    if (child) {
      child.once('exit', (code, signal) => this.settle({ code, signal }));
    } else {
      const check = (): void => {
        if (!pidAlive(pid)) this.settle({ code: null, signal: null });
      };
      qmp.once('close', () => {
        // QMP closes a moment before the process is reaped.
        const poll = setInterval(() => {
          if (!pidAlive(pid)) {
            clearInterval(poll);
            check();
          }
        }, 20);
      });
      this.watch = setInterval(check, 1000);
      this.watch.unref();
    }
  }

  get running(): boolean {
    return !this.done;
  }

  async requestStop(): Promise<void> {
    if (this.done) return;
    await this.qmp.execute('send-key', CTRL_ALT_DEL);
  }

  async kill(): Promise<void> {
    if (this.done) return;
    try {
      await Promise.race([this.qmp.execute('quit'), sleep(1000)]);
    } catch {
      /* QMP gone; fall through to the signal */
    }
    const ended = await Promise.race([this.exited.then(() => true), sleep(2000).then(() => false)]);
    if (!ended && pidAlive(this.pid)) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await this.exited;
    }
  }

  async pause(): Promise<void> {
    await this.qmp.execute('stop');
  }

  async resume(): Promise<void> {
    await this.qmp.execute('cont');
  }

  detach(): void {
    if (this.watch) clearInterval(this.watch);
    this.qmp.close();
  }
}
