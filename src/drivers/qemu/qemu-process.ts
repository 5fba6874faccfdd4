import { createConnection, type Socket } from 'node:net';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { UigniterError } from '../../core/errors.js';
import type { CodeCacheStats, VmmExit, VmmProcess, VmmSnapshot } from '../../core/ports.js';
import { run } from '../../util/exec.js';
import { alignedDelay } from '../../util/aligned-delay.js';
import { processAlive as pidAlive, processArgv } from '../../util/process.js';
import { codeCacheBoundMiB, codeCacheRoomBytes, parseInfoJit } from './code-cache.js';
import { AGENT_SOCKET, NETDEV_ID, type GuestMemory } from './command-line.js';
import { receiveMigration, sendMigration, setMigration, waitForMigration, waitRunStateLeaves, type MigrationSocket } from './migration.js';
import type { QmpClient } from './qmp-client.js';

/** Files of a snapshot directory. */
export const SNAPSHOT_STATE = 'state';
export const SNAPSHOT_MEMORY = 'memory';
/** The sockets migration streams go through, in the VMM's jail (or run directory). */
const MIGRATE_OUT = 'migrate-out.sock';
const MIGRATE_IN = 'migrate-in.sock';

/** How long a save or a load may take (a 'stream' snapshot of a large guest is slow under load). */
const MIGRATION_TIMEOUT_MS = 300_000;

const CTRL_ALT_DEL = { keys: ['ctrl', 'alt', 'delete'].map((k) => ({ type: 'qcode', data: k })) };

export interface QemuProcessInit {
  pid: number;
  qmp: QmpClient;
  /** The exit of our child; null for an adopted VM (not our child: watched through QMP and its pid). */
  childExit: Promise<VmmExit> | null;
  runDir: string;
  /** The RAM backend (null: anonymous RAM, a VM started before RAM went into files). */
  memory: GuestMemory | null;
  /** The RAM file is this VM's own (in the driver's memory directory): removed when it ends. */
  ownsMemory: boolean;
  hasNic: boolean;
  compat: string;
  /** Reads the end of QEMU's log, to explain a failure. */
  why: () => Promise<string>;
  /**
   * Where the migration sockets go: `host` as the daemon sees it, `vmm` as QEMU does (`/`
   * in its chroot), `owner` the VMM's uid when it is not root.
   */
  sockets: { host: string; vmm: string; owner: { uid: number; gid: number } | null };
  /** Runs once the process ended (its cgroup removed), before `exited` settles. */
  onExit?: () => Promise<void>;
}

interface OwnedFile {
  path: string;
  ino: number;
}

/**
 * A running QEMU. Its end is seen through the child's exit event when we launched it, or,
 * for a VM adopted after a daemon restart (not our child), through the QMP socket closing
 * plus a check that the pid is gone. When it ends, the files it left (its RAM file, its
 * sockets) are removed before `exited` settles; only those with the inode they had at start,
 * so a late cleanup never removes the files of the VM's next boot.
 */
export class QemuProcess implements VmmProcess {
  readonly pid: number;
  readonly exited: Promise<VmmExit>;
  /** When the process itself ended (before the cleanup `exited` waits for). */
  private readonly ended: Promise<VmmExit>;
  private done = false;
  private detached = false;
  private watch: NodeJS.Timeout | null = null;
  private agent: Socket | null = null;
  private readonly qmp: QmpClient;
  /** The translation cache's bound, MiB (null: KVM, none), from the command line; undefined: gone. */
  private codeCacheBound: Promise<number | null | undefined> | undefined;

  private constructor(
    private readonly init: QemuProcessInit,
    private readonly owned: OwnedFile[],
  ) {
    this.pid = init.pid;
    this.qmp = init.qmp;
    this.ended = init.childExit ?? this.watchAdopted();
    this.exited = this.ended.then(async (e) => {
      this.done = true;
      if (this.watch) clearTimeout(this.watch);
      this.qmp.close();
      this.agent?.destroy();
      if (!this.detached) {
        await removeOwned(this.owned);
        await this.init.onExit?.().catch(() => undefined);
      }
      return e;
    });
  }

  /** Wraps a started QEMU, noting the inodes of the files it made (its RAM file, its sockets). */
  static async create(init: QemuProcessInit): Promise<QemuProcess> {
    const paths = [join(init.runDir, 'qmp.sock'), join(init.runDir, AGENT_SOCKET)];
    if (init.memory && init.ownsMemory) paths.push(init.memory.path);
    const owned: OwnedFile[] = [];
    for (const path of paths) {
      const s = await stat(path).catch(() => null);
      if (s) owned.push({ path, ino: s.ino });
    }
    return new QemuProcess(init, owned);
  }

  private watchAdopted(): Promise<VmmExit> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (!pidAlive(this.pid)) resolve({ code: null, signal: null });
      };
      this.qmp.once('close', () => {
        if (this.detached) return;
        // QMP closes a moment before the process is reaped.
        const poll = setInterval(() => {
          if (!pidAlive(this.pid)) {
            clearInterval(poll);
            check();
          }
        }, 20);
      });
      // The QMP close is the quick signal; this backs it up, on a grid shared by every
      // adopted VM (one wake-up a second for all of them).
      const schedule = (): void => {
        this.watch = setTimeout(() => {
          check();
          if (!this.done) schedule();
        }, alignedDelay(1000));
        this.watch.unref();
      };
      schedule();
    });
  }

  get running(): boolean {
    return !this.done;
  }

  /** The RAM is a shared file (a snapshot copies it) rather than private memory (a snapshot streams it). */
  get sharedMemory(): boolean {
    return this.init.memory?.shared ?? false;
  }

  async requestStop(): Promise<void> {
    if (this.done) return;
    await this.qmp.execute('send-key', CTRL_ALT_DEL);
  }

  async kill(): Promise<void> {
    if (this.done) {
      // Ended on its own: wait for its files to be removed.
      await this.exited;
      return;
    }
    try {
      await Promise.race([this.qmp.execute('quit'), sleep(1000)]);
    } catch {
      /* QMP gone; fall through to the signal */
    }
    const ended = await Promise.race([this.ended.then(() => true), sleep(2000).then(() => false)]);
    if (!ended && pidAlive(this.pid)) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await this.exited;
  }

  async pause(): Promise<void> {
    await this.qmp.execute('stop');
  }

  /** `cont` also leaves 'postmigrate' (after a snapshot): it takes the disks back first. */
  async resume(): Promise<void> {
    await this.qmp.execute('cont');
  }

  async setLink(up: boolean): Promise<void> {
    if (!this.init.hasNic) return;
    // No announce-self: its RARP and the guest's gratuitous ARP were broadcast to every VM
    // on the bridge at each create. The network pins each guest's MAC to its tap and its
    // address to its MAC instead (NamespaceNetwork.pinMac).
    await this.qmp.execute('set_link', { name: NETDEV_ID, up });
  }

  /**
   * Saves the paused VM into dir: device state through `migrate` to `exec:cat`, and for a
   * VM whose RAM is a shared file, that file copied sparsely (x-ignore-shared keeps the RAM
   * out of the stream). The VM is left in QEMU's 'postmigrate' state, paused; `cont`
   * resumes it. QEMU refuses to migrate from 'postmigrate', so a second snapshot needs a
   * resume (and pause) between the two.
   */
  async saveSnapshot(dir: string): Promise<VmmSnapshot> {
    const status = await this.qmp.execute<{ status: string; running: boolean }>('query-status');
    if (status.running) throw new UigniterError('failed_precondition', 'a VM must be paused to save a snapshot');
    if (status.status === 'postmigrate') {
      throw new UigniterError('failed_precondition', 'this VM was saved since it was paused: resume it before saving it again');
    }
    if (status.status !== 'paused') throw new UigniterError('failed_precondition', `cannot save a VM in QEMU state '${status.status}'`);
    const shared = this.sharedMemory;
    const statePath = join(dir, SNAPSHOT_STATE);
    const memoryPath = join(dir, SNAPSHOT_MEMORY);
    let receiving: { done: Promise<void>; close: () => Promise<void> } | null = null;
    try {
      await setMigration(this.qmp, shared, false);
      const sock = this.socket(MIGRATE_OUT);
      receiving = await receiveMigration(sock, statePath);
      await this.qmp.execute('migrate', { uri: `unix:${sock.vmmPath}` });
      await waitForMigration(this.qmp, { gone: this.ended, why: this.init.why, timeoutMs: MIGRATION_TIMEOUT_MS, what: 'saving the snapshot' });
      // QEMU has sent it all; the file holds it all once the stream ends.
      await receiving.done;
      await waitRunStateLeaves(this.qmp, ['finish-migrate']);
      if (shared) {
        // The guest's pages that were never touched are holes in the tmpfs file: keep them holes.
        await run('cp', ['--sparse=always', this.init.memory!.path, memoryPath]);
      }
      let bytes = 0;
      for (const p of shared ? [statePath, memoryPath] : [statePath]) bytes += (await stat(p)).blocks * 512;
      return { dir, memory: shared ? 'file' : 'stream', bytes, compat: this.init.compat };
    } catch (e) {
      await receiving?.close();
      receiving = null;
      await rm(statePath, { force: true });
      await rm(memoryPath, { force: true });
      throw e instanceof UigniterError ? e : new UigniterError('vmm_failed', `saving the snapshot: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      await receiving?.close();
    }
  }

  /** A migration socket of this VMM, as the daemon and QEMU name it. */
  private socket(name: string): MigrationSocket {
    const s = this.init.sockets;
    return { socket: join(s.host, name), vmmPath: join(s.vmm, name), owner: s.owner };
  }

  /**
   * The restore's half: loads a snapshot's state into this QEMU (started with -incoming
   * defer -S and the snapshot's memory), then cuts the link. Left paused.
   */
  async loadSnapshot(dir: string, ignoreShared: boolean): Promise<void> {
    await setMigration(this.qmp, ignoreShared, true);
    const sock = this.socket(MIGRATE_IN);
    await rm(sock.socket, { force: true });
    try {
      // QEMU listens once migrate-incoming returns; the daemon reads the state file to it.
      await this.qmp.execute('migrate-incoming', { uri: `unix:${sock.vmmPath}` });
      const sent = sendMigration(sock, join(dir, SNAPSHOT_STATE));
      sent.catch(() => undefined);
      // QEMU's own account of a failed load says more than the broken pipe it leaves.
      await waitForMigration(this.qmp, { gone: this.ended, why: this.init.why, timeoutMs: MIGRATION_TIMEOUT_MS, what: 'loading the snapshot' });
      // QEMU says the load completed, so it read the whole stream; it may close its end
      // before our side has finished closing ours (a premature close under load), which is
      // no failure of the load.
      await sent.catch(() => undefined);
    } finally {
      await rm(sock.socket, { force: true });
    }
    await waitRunStateLeaves(this.qmp, ['inmigrate', 'finish-migrate']);
    if (this.init.memory?.shared && this.init.ownsMemory) {
      // The load read every page of the fresh tmpfs file to compare it with zero, which
      // allocates it all (256 MiB for a 256 MiB guest): give the zero pages back. The guest
      // is paused, nothing writes meanwhile. Only memory is at stake if it fails.
      await run('fallocate', ['--dig-holes', this.init.memory.path]).catch(() => undefined);
    }
    // virtio-net's post-load sets the link from the migrated status: cut it after the load.
    await this.setLink(false);
  }

  async openAgent(): Promise<Duplex> {
    if (this.done) throw new UigniterError('failed_precondition', 'the VM is not running');
    if (this.agent && !this.agent.destroyed) throw new UigniterError('conflict', 'the agent channel of this VM is already open');
    const path = join(this.init.runDir, AGENT_SOCKET);
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = createConnection(path);
          s.once('connect', () => {
            s.off('error', reject);
            resolve(s);
          });
          s.once('error', reject);
        });
        this.agent = socket;
        socket.once('close', () => {
          if (this.agent === socket) this.agent = null;
        });
        return socket;
      } catch (e) {
        // QEMU creates the socket while it starts.
        const code = (e as NodeJS.ErrnoException).code;
        if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() > deadline || this.done) {
          throw new UigniterError('vmm_failed', `cannot open the agent channel at ${path}: ${(e as Error).message}`);
        }
        await sleep(20);
      }
    }
  }

  detach(): void {
    this.detached = true;
    if (this.watch) clearTimeout(this.watch);
    this.agent?.destroy();
    this.qmp.close();
  }

  async growthBytes(): Promise<number | null> {
    const bound = await this.boundMiB();
    if (bound === undefined) return null;
    return bound === null ? 0 : codeCacheRoomBytes(this.pid, bound);
  }

  async codeCache(): Promise<CodeCacheStats | null> {
    const bound = await this.boundMiB();
    if (bound === undefined) throw new UigniterError('vmm_failed', `qemu (pid ${this.pid}) is gone`);
    if (bound === null) return null;
    // The HMP command through QMP: QMP itself has no query for the translation cache in 7.2.
    const text = await this.qmp.execute<string>('human-monitor-command', { 'command-line': 'info jit' });
    const jit = parseInfoJit(text);
    if (!jit) throw new UigniterError('vmm_failed', `qemu's 'info jit' said nothing of its translation cache: ${text.slice(0, 200)}`);
    return { boundMiB: bound, usedMiB: Math.round((jit.usedBytes / 1048576) * 10) / 10, flushes: jit.flushes };
  }

  /**
   * The translation cache's bound in MiB (null: KVM, none), read from the process's own
   * command line: adopted VMs have no other record of it. Undefined when the process is gone.
   */
  private async boundMiB(): Promise<number | null | undefined> {
    this.codeCacheBound ??= processArgv(this.pid).then((argv) => (argv.length ? codeCacheBoundMiB(argv) : undefined));
    const bound = await this.codeCacheBound;
    if (bound === undefined) this.codeCacheBound = undefined;
    return bound;
  }
}

async function removeOwned(files: OwnedFile[]): Promise<void> {
  for (const f of files) {
    const s = await stat(f.path).catch(() => null);
    if (s && s.ino === f.ino) await rm(f.path, { force: true }).catch(() => undefined);
  }
}
