import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConsoleTail } from '../../guest/console-tail.js';
import { CONSOLE_LOG } from '../guest-boot.js';
import { isActive } from '../vm-state.js';
import type { Fleet } from '../supervision/fleet.js';

/** A VM's console: read whole or the last lines, or followed until the VM stops. */
export class VmLogs {
  constructor(private readonly fleet: Fleet) {}

  private path(ref: string): { id: string; path: string } {
    const { id } = this.fleet.records.get(ref);
    return { id, path: join(this.fleet.runDir(id), CONSOLE_LOG) };
  }

  /** The rotated part (console.log.1) and the current one, oldest first. */
  private async text(path: string): Promise<{ text: string; current: number }> {
    const older = await readFile(`${path}.1`, 'utf8').catch(() => '');
    const current = await readFile(path, 'utf8').catch(() => '');
    return { text: older + current, current: Buffer.byteLength(current) };
  }

  async read(ref: string, tail?: number): Promise<string> {
    const { path } = this.path(ref);
    const { text } = await this.text(path);
    return tail === undefined ? text : text.split('\n').slice(-tail - 1).join('\n');
  }

  /**
   * Sends what the log holds (or its last `tail` lines), then each new line, until the VM
   * is no longer up or `signal` aborts; then calls `end` once.
   */
  async follow(ref: string, tail: number | undefined, write: (text: string) => void, end: () => void, signal: AbortSignal): Promise<void> {
    const { id, path } = this.path(ref);
    const { text, current } = await this.text(path);
    write(tail === undefined ? text : text.split('\n').slice(-tail - 1).join('\n'));
    const follow = new ConsoleTail(path, { offset: current, pollMs: 100 });
    follow.on('line', (line) => write(`${line}\n`));
    follow.start();
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearInterval(check);
      void follow.stop();
      end();
    };
    const check = setInterval(() => {
      const vm = this.fleet.records.find(id);
      if (!vm || !isActive(vm.state)) void follow.pump().then(finish);
    }, 250);
    signal.addEventListener('abort', finish, { once: true });
  }
}
