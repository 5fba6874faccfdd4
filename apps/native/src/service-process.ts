import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ServiceSpec {
  /** Label for output and lookups, e.g. `db` or `w1`. */
  name: string;
  /** Absolute path of the service's entry point (its dist/main.js). */
  entry: string;
  port: number;
  env: Record<string, string>;
  /** Copy the service's output to our stdout, prefixed with its name. */
  echo: boolean;
  /** Width to pad names to in echoed output. */
  nameWidth?: number;
}

/** One service run as a child `node` process, with its output kept for inspection. */
export class ServiceProcess {
  readonly url: string;
  /** Every line the service printed, across restarts. */
  readonly lines: string[] = [];
  private child: ChildProcess | undefined;
  private exit: Promise<number | null> = Promise.resolve(null);

  constructor(readonly spec: ServiceSpec) {
    this.url = `http://127.0.0.1:${spec.port}`;
  }

  get name(): string {
    return this.spec.name;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.spec.env, PORT: String(this.spec.port) };
    // Set by `node --test` for its own children; a service is not a test file.
    delete env['NODE_TEST_CONTEXT'];
    // Own process group: a Ctrl-C in the terminal reaches only the runner, which
    // then stops the services in order (workers before the services they need).
    const child = spawn(process.execPath, [this.spec.entry], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.child = child;
    this.exit = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.record(`exited (${signal ?? `code ${code}`})`);
        resolve(code);
      });
      child.once('error', (err) => {
        this.record(`failed to start: ${err.message}`);
        resolve(null);
      });
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (line) => this.record(line));
    }
  }

  private record(line: string): void {
    this.lines.push(line);
    if (this.spec.echo) {
      process.stdout.write(`${this.name.padEnd(this.spec.nameWidth ?? 8)} | ${line}\n`);
    }
  }

  /** Polls GET /healthz until it answers 200. */
  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error(`${this.name} exited before becoming healthy:\n${this.tail()}`);
      try {
        const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.status === 200) return;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) throw new Error(`${this.name} not healthy after ${timeoutMs} ms:\n${this.tail()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Sends `signal` (SIGKILL by default) and waits for the process to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.child?.kill(signal);
    await this.exit;
  }

  /** Sends a signal without waiting (e.g. SIGSTOP/SIGCONT). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child?.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it is still running after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    // A stopped (SIGSTOP) process would never see the SIGTERM.
    this.child?.kill('SIGCONT');
    this.child?.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    await this.exit;
    clearTimeout(timer);
  }

  /** Resolves with the exit code once the process ends. */
  exited(): Promise<number | null> {
    return this.exit;
  }

  tail(lines = 30): string {
    return this.lines.slice(-lines).map((line) => `  ${this.name} | ${line}`).join('\n');
  }
}
