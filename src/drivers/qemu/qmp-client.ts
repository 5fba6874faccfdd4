import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export class QmpError extends Error {
  constructor(
    readonly errorClass: string,
    desc: string,
  ) {
    super(`QMP ${errorClass}: ${desc}`);
  }
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/**
 * A client of QEMU's QMP protocol on a unix socket: JSON lines, commands matched to
 * replies by id, asynchronous events. Written here because no maintained npm package
 * speaks QMP; the protocol is small (qmp_capabilities, then execute/return/error/event).
 */
export class QmpClient extends EventEmitter<{ event: [QmpEvent]; close: [] }> {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  private constructor(private readonly socket: Socket) {
    super();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.onClose());
    socket.on('error', () => undefined); // 'close' follows
  }

  /** Connects, retrying while QEMU has not created the socket yet, and negotiates capabilities. */
  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = createConnection(path);
          s.once('connect', () => {
            s.off('error', reject);
            resolve(s);
          });
          s.once('error', reject);
        });
        const client = new QmpClient(socket);
        await client.handshake(Math.max(deadline - Date.now(), 1000));
        return client;
      } catch (e) {
        lastError = e;
        await sleep(10);
      }
    }
    throw new Error(`cannot connect to QMP at ${path}: ${String(lastError)}`);
  }

  private greeting: ((v: unknown) => void) | null = null;

  private async handshake(timeoutMs: number): Promise<void> {
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no QMP greeting')), timeoutMs);
      this.greeting = (v) => {
        clearTimeout(t);
        resolve(v);
      };
    });
    await this.execute('qmp_capabilities');
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('QMP' in msg) {
        this.greeting?.(msg);
        this.greeting = null;
      } else if ('event' in msg) {
        this.emit('event', msg as unknown as QmpEvent);
      } else if ('id' in msg) {
        const p = this.pending.get(msg.id as number);
        if (!p) continue;
        this.pending.delete(msg.id as number);
        if ('error' in msg) {
          const err = msg.error as { class: string; desc: string };
          p.reject(new QmpError(err.class, err.desc));
        } else {
          p.resolve(msg.return);
        }
      }
    }
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new Error('QMP connection closed'));
    this.pending.clear();
    this.emit('close');
  }

  get isClosed(): boolean {
    return this.closed;
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('QMP connection closed'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id })}\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
