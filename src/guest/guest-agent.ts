import type { Duplex } from 'node:stream';
import { formatCommand, MAX_LINE, parseReply, type AgentCommand, type AgentReply, type GuestIdentity } from './agent-protocol.js';

export const AGENT_TIMEOUT_MS = 5000;

/** What `accept` returns for an `ok` reply that does not fit the command. */
const UNEXPECTED = Symbol('unexpected');

function expect(words: string[], want: string[]): void | typeof UNEXPECTED {
  if (words.length !== want.length || words.some((w, i) => w !== want[i])) return UNEXPECTED;
}

interface Pending {
  name: AgentCommand['kind'];
  /** Gives the command's result from an `ok` reply's words, or UNEXPECTED. */
  accept: (words: string[]) => unknown;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  /** Timed out: its reply may still come and must be consumed, not given to the next command. */
  settled: boolean;
}

/**
 * The host's client of the guest agent (protocol in agent-protocol.ts) over the byte
 * stream of the VM's agent channel. Commands may be issued without waiting; replies are
 * matched to commands in order. A command that times out is rejected, and its reply, if it
 * comes later, is consumed and dropped so the next command still gets its own reply.
 */
export class GuestAgent {
  private readonly queue: Pending[] = [];
  private buf = '';
  private closedError: Error | null = null;
  private readonly onData = (chunk: Buffer | string): void => this.received(chunk);
  private readonly onEnd = (): void => this.fail(new Error('guest agent: the channel closed'));
  private readonly onError = (e: Error): void => this.fail(new Error(`guest agent: channel error: ${e.message}`));

  constructor(
    private readonly stream: Duplex,
    private readonly timeoutMs = AGENT_TIMEOUT_MS,
  ) {
    stream.setEncoding('latin1');
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
    stream.on('error', this.onError);
  }

  async ping(timeoutMs = this.timeoutMs): Promise<void> {
    await this.send({ kind: 'ping' }, timeoutMs, (w) => expect(w, ['pong']));
  }

  /** Quiesces the app; `appQuiesced` says the Node hooks acknowledged (the app runs no JS). */
  freeze(timeoutMs = this.timeoutMs): Promise<{ appQuiesced: boolean }> {
    return this.send({ kind: 'freeze' }, timeoutMs, (w) => {
      if (w.length !== 2 || w[0] !== 'frozen' || (w[1] !== '0' && w[1] !== '1')) return UNEXPECTED;
      return { appQuiesced: w[1] === '1' };
    });
  }

  /** Sets the guest's wall clock (after a pause). */
  async clock(timeMs: number, timeoutMs = this.timeoutMs): Promise<void> {
    await this.send({ kind: 'clock', timeMs }, timeoutMs, (w) => expect(w, ['clock']));
  }

  async thaw(timeoutMs = this.timeoutMs): Promise<void> {
    await this.send({ kind: 'thaw' }, timeoutMs, (w) => expect(w, ['thawed']));
  }

  async renew(identity: GuestIdentity, timeoutMs = this.timeoutMs): Promise<void> {
    await this.send({ kind: 'renew', identity }, timeoutMs, (w) => expect(w, ['renewed']));
  }

  /** Rejects what is still waiting and ends the stream. */
  close(): void {
    this.fail(new Error('guest agent: closed'));
  }

  private send<T>(cmd: AgentCommand, timeoutMs: number, accept: (words: string[]) => T | typeof UNEXPECTED): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    let line: string;
    try {
      line = formatCommand(cmd);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    return new Promise<T>((resolve, reject) => {
      const p: Pending = {
        name: cmd.kind,
        accept,
        resolve: resolve as (v: unknown) => void,
        reject,
        settled: false,
        timer: setTimeout(() => {
          p.settled = true;
          reject(new Error(`guest agent: ${cmd.kind} timed out after ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.queue.push(p);
      this.stream.write(line, 'latin1');
    });
  }

  private received(chunk: Buffer | string): void {
    this.buf += typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) break;
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      this.answer(line);
      if (this.closedError) return;
    }
    if (this.buf.length > MAX_LINE) this.fail(new Error(`guest agent: reply longer than ${MAX_LINE} bytes`));
  }

  private answer(line: string): void {
    const p = this.queue.shift();
    if (!p) {
      // Nothing asked: the guest does not speak first, so the stream is out of step.
      this.fail(new Error(`guest agent: unexpected line ${JSON.stringify(line.slice(0, 200))}`));
      return;
    }
    clearTimeout(p.timer);
    if (p.settled) return;
    p.settled = true;
    let reply: AgentReply;
    try {
      reply = parseReply(line);
    } catch (e) {
      p.reject(e as Error);
      this.fail(e as Error);
      return;
    }
    if (reply.kind === 'err') {
      p.reject(new Error(`guest agent: ${p.name}: ${reply.message}`));
      return;
    }
    const result = p.accept(reply.words);
    if (result === UNEXPECTED) p.reject(new Error(`guest agent: unexpected reply to ${p.name}: ok ${reply.words.join(' ')}`));
    else p.resolve(result);
  }

  private fail(error: Error): void {
    if (this.closedError) return;
    this.closedError = error;
    for (const p of this.queue.splice(0)) {
      clearTimeout(p.timer);
      if (!p.settled) p.reject(error);
    }
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onEnd);
    this.stream.off('error', this.onError);
    // A late error from the stream must not become an uncaught exception.
    this.stream.on('error', () => {});
    this.stream.destroy();
  }
}

