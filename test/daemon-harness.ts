import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Agent, fetch as undiciFetch } from 'undici';
import { UigniterClient } from '../src/client/client.js';
import { run } from '../src/util/exec.js';
import { CLI, cli, cliEnv, freePort, qemuProcesses, removeHome, tempHome, waitFor } from './helpers.js';

let counter = 0;

const SLOTS_DIR = '/run/uigniter-test-slots';
const SLOTS = 250;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A network slot (subnet and link net) no other test process holds: a lock file per slot,
 * made with O_EXCL, naming its pid; one whose pid is gone is taken over. Test files that
 * run at once (by hand, or several engineers on one machine) never share a subnet.
 */
async function takeSlot(): Promise<{ slot: number; release: () => Promise<void> }> {
  await mkdir(SLOTS_DIR, { recursive: true });
  const start = (process.pid * 7 + counter) % SLOTS;
  for (let i = 0; i < SLOTS; i++) {
    const slot = (start + i) % SLOTS;
    const file = join(SLOTS_DIR, String(slot));
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(file, 'wx');
        await fh.writeFile(String(process.pid));
        await fh.close();
        return { slot, release: () => unlink(file).catch(() => undefined) };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const owner = Number(await readFile(file, 'utf8').catch(() => ''));
        // Held by a live process (or being written this instant): try the next slot.
        if (!Number.isInteger(owner) || owner <= 0 || alive(owner)) break;
        await unlink(file).catch(() => undefined);
      }
    }
  }
  throw new Error(`no free test network slot in ${SLOTS_DIR}`);
}

export interface TestDaemon {
  home: string;
  url: string;
  port: number;
  /** The dashboard's port (the same page and API), kept across restarts. */
  uiPort: number;
  /** http://127.0.0.1:<uiPort>/ui/ */
  uiUrl: string;
  netns: string;
  bridge: string;
  subnet: string;
  linkNet: string;
  client: UigniterClient;
  child: ChildProcess;
  log: () => string;
  /** Starts the daemon process (again) with the same home and network. */
  restart(extraEnv?: NodeJS.ProcessEnv): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Stops the daemon, removes its VMs' processes, namespace and home. */
  destroy(): Promise<void>;
  leases(): { ip: string; vm_id: string }[];
  taps(): Promise<string[]>;
}

/**
 * A real daemon in its own process, with its own state directory, network namespace,
 * bridge, subnet and port, so test files never touch each other or the host's network.
 */
export async function startTestDaemon(opts: { env?: NodeJS.ProcessEnv; args?: string[]; prefix?: number; home?: string } = {}): Promise<TestDaemon> {
  const { slot: n, release } = await takeSlot();
  counter++;
  const home = opts.home ?? (await tempHome('uigniter-daemon-'));
  const port = await freePort();
  const uiPort = await freePort();
  const netns = `uigt-${process.pid}-${counter}`;
  const bridge = `ub${(process.pid % 10000)}${counter}`;
  const subnet = `172.29.${n}.0/${opts.prefix ?? 24}`;
  const linkNet = `172.28.${250 + Math.floor(n / 64)}.${(n % 64) * 4}/30`;
  const args = ['daemon', '--port', String(port), '--ui-port', String(uiPort), '--netns', netns, '--bridge', bridge, '--subnet', subnet, '--link-net', linkNet, ...(opts.args ?? [])];
  let child!: ChildProcess;
  let output = '';
  const start = async (extraEnv: NodeJS.ProcessEnv = {}): Promise<void> => {
    child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(home, { ...opts.env, ...extraEnv }), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await Promise.race([
      waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 30_000, 'the daemon to listen', 50),
      exited.then(() => {
        throw new Error(`the daemon exited at start:\n${output}`);
      }),
    ]);
  };
  await start();
  const client = new UigniterClient(`http://127.0.0.1:${port}`);
  const d: TestDaemon = {
    home,
    url: `http://127.0.0.1:${port}`,
    port,
    uiPort,
    uiUrl: `http://127.0.0.1:${uiPort}/ui/`,
    netns,
    bridge,
    subnet,
    linkNet,
    client,
    get child() {
      return child;
    },
    log: () => output,
    restart: start,
    async kill(signal) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill(signal);
      await gone;
    },
    async destroy() {
      await d.kill('SIGTERM');
      await cli(home, ['daemon', '--cleanup', '--netns', netns, '--bridge', bridge, '--subnet', subnet, '--link-net', linkNet]);
      for (const pid of await qemuProcesses(home)) process.kill(pid, 'SIGKILL');
      await removeHome(home);
      await release();
    },
    leases() {
      const db = new Database(join(home, 'state.db'), { readonly: true });
      try {
        return db.prepare('SELECT ip, vm_id FROM ip_leases ORDER BY ip').all() as { ip: string; vm_id: string }[];
      } finally {
        db.close();
      }
    },
    async taps() {
      const out = (await run('ip', ['-n', netns, '-j', 'link', 'show'])).stdout;
      return (JSON.parse(out) as { ifname: string }[]).map((l) => l.ifname).filter((i) => i.startsWith('vt'));
    },
  };
  return d;
}

/** Builds the test fixtures' images in a daemon's home (the CLI works on the home directly). */
export async function buildFixture(home: string, dir: string, name: string): Promise<void> {
  const r = await cli(home, ['image', 'build', dir, '--name', name]);
  if (r.code !== 0) throw new Error(`image build ${name} failed: ${r.stderr}`);
}

export async function readLog(home: string, vmId: string): Promise<string> {
  return readFile(join(home, 'vms', vmId, 'console.log'), 'utf8').catch(() => '');
}

export async function guestGet<T>(ip: string, path: string, timeoutMs = 8000): Promise<T> {
  // A connection of its own: fetch's shared pool would reuse a kept-alive connection to this
  // address from an earlier VM that held it, which the new VM answers with a reset.
  const agent = new Agent();
  try {
    const res = await undiciFetch(`http://${ip}:8080${path}`, { signal: AbortSignal.timeout(timeoutMs), dispatcher: agent });
    return (await res.json()) as T;
  } finally {
    await agent.close();
  }
}

/** The host's end of the daemon's veth, where its DNS for VM and service names listens. */
export function dnsAddress(d: TestDaemon): string {
  const [base] = d.linkNet.split('/');
  const parts = base!.split('.').map(Number);
  parts[3]! += 1;
  return parts.join('.');
}

/** Every address a name resolves to through the daemon's DNS, from the host (sorted; none: []). */
export async function resolveOnHost(d: TestDaemon, name: string): Promise<string[]> {
  const { Resolver } = await import('node:dns/promises');
  const r = new Resolver({ timeout: 1000, tries: 1 });
  r.setServers([dnsAddress(d)]);
  return r.resolve4(`${name}.uigniter.internal`).then(
    (a) => a.sort(),
    () => [],
  );
}

/**
 * The daemon's own answer for a name, from the host: its addresses (sorted), or the error
 * code of the answer. `ENOTFOUND` is the daemon saying the name does not exist (NXDOMAIN);
 * a DNS server that does not answer gives `ETIMEOUT` or `ECONNREFUSED`, so a test that
 * expects a name to be gone can tell that apart from a daemon that is not listening.
 */
export async function dnsAnswer(d: TestDaemon, name: string): Promise<string[] | string> {
  const { Resolver } = await import('node:dns/promises');
  const r = new Resolver({ timeout: 2000, tries: 1 });
  r.setServers([dnsAddress(d)]);
  return r.resolve4(`${name}.uigniter.internal`).then(
    (a) => a.sort(),
    (e: unknown) => String((e as { code?: unknown }).code ?? e),
  );
}
