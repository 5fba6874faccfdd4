import { EventEmitter } from 'node:events';
import { fstatSync, watch, type FSWatcher } from 'node:fs';
import { copyFile, open, stat, truncate, type FileHandle } from 'node:fs/promises';
import { alignedDelay } from '../util/aligned-delay.js';
import { parseGuestEvent, type GuestEvent } from './console-events.js';

export interface ConsoleTailOptions {
  /** Byte offset to start at (a VM's log is appended across boots). */
  offset?: number;
  /** The backup poll's first period; it doubles while nothing new comes, up to maxPollMs. */
  pollMs?: number;
  maxPollMs?: number;
  /**
   * Keeps the file bounded: once read past this many bytes, it is copied to `<path>.1` and
   * truncated (the VMM appends, so it writes on at the new end). Only the one tail that
   * always runs with the VM should rotate; every tail starts again at 0 when it finds the
   * file shorter than its offset. Bytes the VMM writes between the copy and the truncation
   * are lost (a few, under a flood).
   */
  rotateAtBytes?: number;
}

/**
 * Follows a VM's console log file as the VMM appends to it, emitting 'line' for every
 * complete line and 'event' for the guest init's @uigniter lines. inotify wakes it at
 * once; a poll backs it up because watch events can be coalesced or missed. The poll slows
 * down while the console is quiet (an idle VM's is), so a fleet of idle VMs costs the
 * daemon a few reads a second rather than twenty per VM.
 */
export class ConsoleTail extends EventEmitter<{ line: [string]; event: [GuestEvent] }> {
  private offset: number;
  private partial = '';
  private fh: FileHandle | null = null;
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private pollDelay: number;
  /** Bytes read since the poll last ran: none, and the poll waits longer. */
  private readSincePoll = 0;
  private reading = false;
  private again = false;
  private stopped = false;

  constructor(
    private readonly path: string,
    private readonly opts: ConsoleTailOptions = {},
  ) {
    super();
    this.offset = opts.offset ?? 0;
    this.pollDelay = opts.pollMs ?? 100;
  }

  static async sizeOf(path: string): Promise<number> {
    return stat(path).then((s) => s.size).catch(() => 0);
  }

  start(): this {
    this.schedulePoll();
    try {
      this.watcher = watch(this.path, () => void this.pump());
      this.watcher.on('error', () => undefined);
    } catch {
      /* not created yet: the poll picks it up */
    }
    void this.pump();
    return this;
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    // At its slowest (a quiet console), the poll waits on a shared 1 s grid: the tails of an
    // idle fleet wake the daemon together, not one by one.
    const max = this.opts.maxPollMs ?? 2000;
    const quiet = this.pollDelay >= max;
    this.timer = setTimeout(
      () => {
        const base = this.opts.pollMs ?? 100;
        this.pollDelay = this.readSincePoll > 0 ? base : Math.min(this.pollDelay * 2, max);
        this.readSincePoll = 0;
        void this.pump().finally(() => this.schedulePoll());
      },
      quiet ? alignedDelay(this.pollDelay) : this.pollDelay,
    );
    this.timer.unref();
  }

  /** Reads what is new now; resolves when the file has been read to its current end. */
  async pump(): Promise<void> {
    if (this.stopped) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    try {
      do {
        this.again = false;
        await this.readNew();
      } while (this.again && !this.stopped);
    } finally {
      this.reading = false;
    }
  }

  private async readNew(): Promise<void> {
    if (!this.fh) {
      try {
        this.fh = await open(this.path, 'r');
      } catch {
        return;
      }
      if (!this.watcher && !this.stopped) {
        try {
          this.watcher = watch(this.path, () => void this.pump());
          this.watcher.on('error', () => undefined);
        } catch {
          /* keep polling */
        }
      }
    }
    // Rotated (or truncated) since the last read: what is there now is new.
    // Synchronous: fstat of a local file takes microseconds, and a poll through the thread
    // pool cost two thread hand-offs and a wake-up of the loop, 75 a second with 150 VMs.
    let size: number;
    try {
      size = fstatSync(this.fh.fd).size;
    } catch {
      size = this.offset;
    }
    if (size < this.offset) {
      this.offset = 0;
      this.partial = '';
    }
    // Nothing new (an idle VM's poll, nearly always): no read, and no 64 KiB buffer to
    // allocate. Bytes the VMM appends after this stat wake the watch, or the next poll.
    if (size === this.offset) {
      await this.rotateIfDue();
      return;
    }
    const buf = Buffer.allocUnsafe(64 * 1024);
    for (;;) {
      // stop() may close the file between two reads: then there is nothing more to follow.
      const fh = this.fh;
      if (!fh || this.stopped) return;
      const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset).catch(() => ({ bytesRead: 0 }));
      if (bytesRead === 0) {
        await this.rotateIfDue();
        return;
      }
      this.offset += bytesRead;
      this.readSincePoll += bytesRead;
      const text = this.partial + buf.subarray(0, bytesRead).toString('utf8');
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      for (const raw of lines) {
        const line = raw.replace(/\r$/, '');
        this.emit('line', line);
        const ev = parseGuestEvent(line);
        if (ev) this.emit('event', ev);
      }
    }
  }

  private async rotateIfDue(): Promise<void> {
    const max = this.opts.rotateAtBytes;
    if (max !== undefined && this.offset >= max && !this.stopped) await this.rotate();
  }

  private async rotate(): Promise<void> {
    try {
      await copyFile(this.path, `${this.path}.1`);
      await truncate(this.path, 0);
      this.offset = 0;
    } catch {
      /* the VM's directory is going away: nothing to keep bounded */
    }
  }

  /** Resolves with the first guest event that matches, or rejects after timeoutMs or on abort. */
  waitFor(match: (e: GuestEvent) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<GuestEvent> {
    return new Promise((resolve, reject) => {
      const done = (fn: () => void): void => {
        clearTimeout(timer);
        this.off('event', onEvent);
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const onEvent = (e: GuestEvent): void => {
        if (match(e)) done(() => resolve(e));
      };
      const onAbort = (): void => done(() => reject(signal?.reason ?? new Error('aborted')));
      const timer = setTimeout(() => done(() => reject(new Error(`timed out after ${timeoutMs} ms`))), timeoutMs);
      this.on('event', onEvent);
      signal?.addEventListener('abort', onAbort, { once: true });
      void this.pump();
    });
  }

  get position(): number {
    return this.offset;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.watcher?.close();
    this.watcher = null;
    const fh = this.fh;
    this.fh = null;
    await fh?.close().catch(() => undefined);
  }
}
