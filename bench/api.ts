/**
 * bench/api: the daemon's own cost, from the client's side, against the same QEMU command
 * line run by hand in the same run.
 *
 * Every VM here is created with boot:'cold' (the launch path; with 'auto' the daemon would
 * make a template of the busybox spec and restore later VMs from it).
 *  1. request -> QEMU process started. The client sends POST /vm/run?wait=launched and a
 *     thread of the client watches for the QEMU process: it follows the kernel's last pid
 *     (/proc/sys/kernel/ns_last_pid) and reads the cmdline of each new pid every 0.2 ms
 *     until one has exec'd qemu-system-* with a path of this daemon's home in it; the time is
 *     taken then, on the client's monotonic clock (process.hrtime), and the pid is checked
 *     against the pid in the answer. (The pid's /proc/<pid>/stat starttime would be exact
 *     but counts 10 ms ticks, too coarse here.) This is the moment QEMU's exec is visible,
 *     so it includes the daemon's nsenter exec.
 *  2. request -> answer of POST /vm/run?wait=launched (QEMU up and its QMP handshake done),
 *     in separate runs without the watching thread.
 *  Baseline for both: the exact argv of a QEMU this daemon launched (/proc/<pid>/cmdline:
 *  kernel, initrd, disks, RAM file backend, the tap in the daemon's namespace through
 *  `nsenter --net=/run/netns/<ns>`), with the per-VM paths (run dir, QMP socket, pid file,
 *  console, agent socket, RAM file, tap name, -name) rewritten to fresh ones. Each baseline
 *  run creates its own tap in the bench daemon's namespace (`ip -n <ns> -batch`: tuntap add,
 *  master <bridge>, up: the daemon makes one per VM too), timed, then spawns QEMU and is
 *  timed to QEMU exec'd (watched the same way, for 1) or to its QMP greeting and
 *  qmp_capabilities answered (the point wait=launched reaches, for 2).
 *  The four kinds of runs alternate. Daemon VMs are deleted after each run, untimed.
 *  3. GET /vm requests per second from another process (wrk, else autocannon), 10 s each,
 *     with VMS VMs recorded (stopped, unless VMS_RUNNING=1): idle, and WHILE two client loops
 *     create (wait=launched) and delete busybox VMs, alternating; answers >= 400 and socket
 *     errors counted; CPU of the daemon, of the recorded VMs and of the host printed beside.
 *
 *   node dist/bench/api.js            (root; RUNS=20 VMS=100 LOAD_ROUNDS=2 by default)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import type { VmView } from '../src/client/client.js';
import { run } from '../src/util/exec.js';
import { cpuWindow, median, printTable, ROOT, serverTimingMs, spread, spreadRow, startBenchDaemon, removeDaemonMemoryDir, type BenchDaemon } from './lib.js';

const RUNS = Number(process.env.RUNS ?? 20);
const VMS = Number(process.env.VMS ?? 100);
const LOAD_ROUNDS = Number(process.env.LOAD_ROUNDS ?? 2);
/**
 * VMS_RUNNING=1 keeps the VMS recorded VMs running during the load tests. By default they
 * are stopped right after they launch: the list is as long (the records stay), but 100 idle
 * TCG guests take about 1.4 of this machine's 2 cores, and the daemon would then be measured
 * starved of CPU rather than serving.
 */
const VMS_RUNNING = process.env.VMS_RUNNING === '1';
/** Bounds of the background create/delete loops during a load test. */
const CHURN_LOOPS = 2;
const CHURN_MAX_PER_LOOP = 300;
const LOAD_SECONDS = 10;
/** Pause between runs: a QEMU that just ended still frees its memory for a moment. */
const SETTLE_MS = 100;

const nowNs = (): bigint => process.hrtime.bigint();
const msSince = (t0: bigint, t1: bigint = nowNs()): number => Number(t1 - t0) / 1e6;

// ---------------------------------------------------------------- QEMU exec watcher

/**
 * A thread that, once armed, follows new pids and reports the first one whose argv[0] is
 * qemu-system-* and whose cmdline contains a marker. A forked child shows its parent's
 * cmdline until it execs, and the confined launch's sh (joining the cgroups) and nsenter
 * exec QEMU in place: those pids are checked again. A QEMU thread's id also reads as a
 * pid with QEMU's cmdline: only a thread group leader counts.
 */
const WATCHER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const ctl = new Int32Array(workerData.sab); // [0] job (0 idle), [1] marker index, [2] last pid before the job
const markers = workerData.markers;
const lastPid = () => Number(fs.readFileSync('/proc/sys/kernel/ns_last_pid', 'latin1'));
for (;;) {
  Atomics.wait(ctl, 0, 0);
  const job = Atomics.load(ctl, 0);
  if (job < 0) break;
  const marker = markers[Atomics.load(ctl, 1)];
  let last = Atomics.load(ctl, 2);
  const cands = new Set();
  let found = null;
  const deadline = process.hrtime.bigint() + 30000000000n;
  while (Atomics.load(ctl, 0) === job && found === null && process.hrtime.bigint() < deadline) {
    const cur = lastPid();
    if (cur < last) last = 0; // wrapped
    for (let p = last + 1; p <= cur; p++) cands.add(p);
    last = cur;
    for (const p of cands) {
      let cmd;
      try { cmd = fs.readFileSync('/proc/' + p + '/cmdline', 'latin1'); } catch { cands.delete(p); continue; }
      const argv0 = cmd.slice(0, Math.max(0, cmd.indexOf('\\0')));
      if (/qemu-system-[^/]*$/.test(argv0)) {
        const seen = process.hrtime.bigint();
        let tgid = -1;
        try { tgid = Number(/^Tgid:\\s+(\\d+)/m.exec(fs.readFileSync('/proc/' + p + '/status', 'latin1'))[1]); } catch {}
        if (tgid === p && cmd.includes(marker)) { found = { pid: p, ns: seen }; break; }
        cands.delete(p);
      } else if (!(argv0 === '' || /(^|\\/)(sh|nsenter|node)$/.test(argv0))) {
        cands.delete(p);
      }
    }
    if (found === null) Atomics.wait(ctl, 0, job, 0.2);
  }
  parentPort.postMessage(found ? { job, pid: found.pid, ns: found.ns } : { job, pid: null, ns: null });
  Atomics.wait(ctl, 0, job);
}
`;

class ExecWatcher {
  private readonly sab = new SharedArrayBuffer(12);
  private readonly ctl = new Int32Array(this.sab);
  private readonly worker: Worker;
  private job = 0;

  constructor(markers: string[]) {
    this.worker = new Worker(WATCHER, { eval: true, workerData: { sab: this.sab, markers } });
  }

  /** Arms the watcher for a QEMU whose cmdline contains markers[marker]; resolves with its pid and the hrtime it was seen at. */
  arm(marker: number): Promise<{ pid: number; ns: bigint }> {
    const job = ++this.job;
    const result = new Promise<{ pid: number; ns: bigint }>((resolve, reject) => {
      const on = (m: { job: number; pid: number | null; ns: bigint | null }): void => {
        if (m.job !== job) return;
        this.worker.off('message', on);
        if (m.pid === null || m.ns === null) reject(new Error('no QEMU process seen within 30 s'));
        else resolve({ pid: m.pid, ns: m.ns });
      };
      this.worker.on('message', on);
    });
    result.catch(() => undefined); // a run that failed first never awaits it
    Atomics.store(this.ctl, 1, marker);
    Atomics.store(this.ctl, 2, Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'latin1')));
    Atomics.store(this.ctl, 0, job);
    Atomics.notify(this.ctl, 0);
    return result;
  }

  /** After a job's result: back to idle. */
  disarm(): void {
    Atomics.store(this.ctl, 0, 0);
    Atomics.notify(this.ctl, 0);
  }

  async close(): Promise<void> {
    Atomics.store(this.ctl, 0, -1);
    Atomics.notify(this.ctl, 0);
    await this.worker.terminate();
  }
}

// ---------------------------------------------------------------- the command line by hand

async function argvOf(pid: number): Promise<string[]> {
  const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
  return raw.split('\0').slice(0, raw.endsWith('\0') ? -1 : undefined);
}

interface RawTemplate {
  argv: string[];
  /** The source VM's run dir, RAM file, tap and -name value, as they appear in argv. */
  vmDir: string;
  ramFile: string;
  tap: string;
  name: string;
  id: string;
  /** Files of the VM's directory on the command line (the config drive), copied to the work dir. */
  files: string[];
}

/** Reads the argv of a daemon-launched QEMU and what in it belongs to that one VM. */
async function captureArgv(vm: VmView, work: string): Promise<RawTemplate> {
  const argv = await argvOf(vm.pid!);
  const after = (flag: string): string => argv[argv.indexOf(flag) + 1]!;
  const pidfile = after('-pidfile');
  const vmDir = dirname(pidfile);
  const ramFile = /mem-path=([^,]+)/.exec(argv.find((a) => a.startsWith('memory-backend-file,')) ?? '')?.[1];
  const tap = /ifname=([^,]+)/.exec(argv.find((a) => a.startsWith('tap,')) ?? '')?.[1];
  if (!ramFile || !tap) throw new Error(`unexpected QEMU argv (no RAM file or no tap): ${argv.join(' ')}`);
  // The config drive (and any other disk in the VM's directory): copied once, then per run.
  const files: string[] = [];
  for (const a of argv.filter((x) => x.startsWith('id=') && x.includes('file='))) {
    const file = /file=([^,]+)/.exec(a)![1]!;
    if (dirname(file) !== vmDir) continue;
    const base = file.slice(vmDir.length + 1);
    await copyFile(file, join(work, base));
    files.push(base);
  }
  return { argv, vmDir, ramFile, tap, name: after('-name'), id: vm.id, files };
}

interface RawRun {
  argv: string[];
  dir: string;
  tap: string;
  ram: string;
  qmp: string;
}

/** The captured argv with every per-VM path and name made fresh for run `i`. */
async function freshArgv(t: RawTemplate, work: string, shmDir: string, i: number): Promise<RawRun> {
  const dir = join(work, `raw-${i}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const f of t.files) await copyFile(join(work, f), join(dir, f));
  const tap = `ubr${process.pid % 1000}x${i % 1000}`;
  const ram = join(shmDir, `raw-${i}.ram`);
  const name = `bench-raw-${i}`;
  const argv = t.argv.map((a) =>
    a
      .split(t.name)
      .join(`${name},process=${name}`)
      .split(t.ramFile)
      .join(ram)
      .split(t.vmDir)
      .join(dir)
      .replace(`ifname=${t.tap},`, `ifname=${tap},`),
  );
  const left = argv.filter((a) => a.includes(t.id));
  if (left.length > 0) throw new Error(`the VM's id is still in the rewritten argv: ${left.join(' ')}`);
  // A confined VMM chroots into its jail and drops to its uid once its files are open: the
  // jail is made as the daemon makes it (an empty directory of that uid, 0700). The cgroup
  // the daemon moves its VMM into is not made here.
  const chroot = argv.indexOf('-chroot');
  if (chroot >= 0) {
    const jail = argv[chroot + 1]!;
    const [uid, gid] = (argv[argv.indexOf('-runas') + 1] ?? '').split(':').map(Number);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error(`-chroot without a -runas uid:gid in the argv: ${argv.join(' ')}`);
    await mkdir(jail, { mode: 0o700 });
    await chown(jail, uid!, gid!);
  }
  return { argv, dir, tap, ram, qmp: join(dir, 'qmp.sock') };
}

/** Connects to a QMP socket (retrying every 1 ms), reads the greeting and negotiates capabilities. */
async function qmpHandshake(path: string, deadline: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection(path);
      let buf = '';
      let greeted = false;
      s.setEncoding('utf8');
      s.on('data', (c: string) => {
        buf += c;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!greeted && line.includes('"QMP"')) {
            greeted = true;
            s.write('{"execute":"qmp_capabilities"}\n');
          } else if (greeted && line.includes('"return"')) {
            s.destroy();
            resolve(true);
          }
        }
      });
      s.once('error', () => resolve(false));
      s.once('close', () => resolve(false));
    });
    if (ok) return;
    if (performance.now() > deadline) throw new Error(`no QMP answer on ${path}`);
    await sleep(1);
  }
}

async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

/** Tap by hand + the command line by hand, timed to QEMU exec'd (watcher armed) or to QMP answered. */
async function rawRun(d: BenchDaemon, r: RawRun, watcher: ExecWatcher | null): Promise<{ execMs: number; qmpMs: number; tapMs: number }> {
  const seen = watcher?.arm(1);
  const t0 = nowNs();
  await run('ip', ['-n', d.netns, '-batch', '-'], { input: `tuntap add dev ${r.tap} mode tap\nlink set dev ${r.tap} master ${d.bridge}\nlink set dev ${r.tap} up\n` });
  const tapMs = msSince(t0);
  const child = spawn('nsenter', [`--net=/run/netns/${d.netns}`, '--', ...r.argv], { stdio: 'ignore', detached: true });
  try {
    let execMs = NaN;
    if (seen) {
      const s = await seen;
      watcher!.disarm();
      if (s.pid !== child.pid) throw new Error(`watcher saw pid ${s.pid}, spawned ${child.pid}`);
      execMs = msSince(t0, s.ns);
    }
    await qmpHandshake(r.qmp, performance.now() + 10_000);
    return { execMs, qmpMs: msSince(t0), tapMs };
  } finally {
    await killChild(child);
    await run('ip', ['-n', d.netns, 'link', 'del', 'dev', r.tap]).catch(() => undefined);
    await rm(r.ram, { force: true });
    await rm(r.dir, { recursive: true, force: true });
  }
}

/** POST /vm/run?wait=launched, timed to QEMU exec'd (watcher armed) and to the answer. */
async function daemonRun(d: BenchDaemon, name: string, watcher: ExecWatcher | null): Promise<{ execMs: number; answerMs: number; plan: number; vmm: number }> {
  const seen = watcher?.arm(0);
  const t0 = nowNs();
  const res = await fetch(`${d.url}/vm/run?wait=launched`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: 'sleeper', name, boot: 'cold' }) });
  const answerMs = msSince(t0);
  const text = await res.text();
  try {
    if (res.status !== 201) throw new Error(`run answered ${res.status}: ${text}`);
    const vm = JSON.parse(text) as VmView;
    if (vm.origin !== 'cold') throw new Error(`VM ${name} came up from ${vm.origin}, not cold`);
    let execMs = NaN;
    if (seen) {
      const s = await seen;
      watcher!.disarm();
      if (s.pid !== vm.pid) throw new Error(`watcher saw pid ${s.pid}, the answer says ${vm.pid}`);
      execMs = msSince(t0, s.ns);
    }
    const timing = res.headers.get('server-timing');
    return { execMs, answerMs, plan: serverTimingMs(timing, 'plan'), vmm: serverTimingMs(timing, 'vmm') };
  } finally {
    if (seen) watcher!.disarm();
    await d.client.remove(name, { force: true }).catch(() => undefined);
  }
}

// ---------------------------------------------------------------- load

interface Load {
  tool: string;
  rps: number;
  p50: string;
  p99: string;
  requests: number;
  /** answers >= 400 */
  badStatus: number;
  socketErrors: number;
}

function runTool(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let s = '';
    p.stdout.on('data', (c: Buffer) => (s += c.toString()));
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve(s) : reject(new Error(`${cmd} exit ${code}`))));
  });
}

/**
 * wrk when installed (a C client: it leaves the cores to the daemon), else autocannon.
 * Both run as a separate process with 32 connections for LOAD_SECONDS.
 */
async function loadTest(url: string): Promise<Load> {
  const wrk = await runTool('wrk', ['-t', '1', '-c', '32', '-d', `${LOAD_SECONDS}s`, '--latency', url]).catch(() => null);
  if (wrk) {
    const ms = (v: string | undefined): string => {
      // wrk prints no latency distribution when no request was answered.
      const m = /([0-9.]+)(us|ms|s)/.exec(v ?? '');
      if (!m) return '-';
      const n = Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
      return n.toFixed(2);
    };
    const errs = /Non-2xx or 3xx responses: (\d+)/.exec(wrk);
    const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(wrk);
    return {
      tool: `wrk -t1 -c32 -d${LOAD_SECONDS}s`,
      rps: Number(/Requests\/sec:\s+([0-9.]+)/.exec(wrk)![1]),
      p50: ms(/50%\s+(\S+)/.exec(wrk)?.[1]),
      p99: ms(/99%\s+(\S+)/.exec(wrk)?.[1]),
      requests: Number(/(\d+) requests in/.exec(wrk)![1]),
      badStatus: errs ? Number(errs[1]) : 0,
      socketErrors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    };
  }
  const out = await runTool(process.execPath, [join(ROOT, 'node_modules', 'autocannon', 'autocannon.js'), '-c', '32', '-d', String(LOAD_SECONDS), '-j', url]);
  const r = JSON.parse(out) as { requests: { average: number; total: number }; latency: { p50: number; p99: number }; non2xx: number; errors: number };
  return { tool: `autocannon -c32 -d${LOAD_SECONDS}`, rps: r.requests.average, p50: String(r.latency.p50), p99: String(r.latency.p99), requests: r.requests.total, badStatus: r.non2xx, socketErrors: r.errors };
}

interface Churn {
  created: number;
  deleted: number;
  errors: Record<string, number>;
  createMs: number[];
}

/** CHURN_LOOPS loops creating (wait=launched) and deleting busybox VMs until `stop`, bounded in count. */
async function churn(d: BenchDaemon, tag: string, stop: { done: boolean }): Promise<Churn> {
  const c: Churn = { created: 0, deleted: 0, errors: {}, createMs: [] };
  const fail = (what: string, e: unknown): void => {
    const k = `${what}: ${(e as Error).message.slice(0, 80)}`;
    c.errors[k] = (c.errors[k] ?? 0) + 1;
  };
  await Promise.all(
    Array.from({ length: CHURN_LOOPS }, async (_, loop) => {
      for (let i = 0; i < CHURN_MAX_PER_LOOP && !stop.done; i++) {
        const name = `c${tag}-${loop}-${i}`;
        const t0 = performance.now();
        try {
          await d.client.run({ image: 'sleeper', name, boot: 'cold' }, 'launched');
          c.createMs.push(performance.now() - t0);
          c.created++;
        } catch (e) {
          fail('create', e);
        }
        try {
          await d.client.remove(name, { force: true });
          c.deleted++;
        } catch (e) {
          if ((e as { status?: number }).status !== 404) fail('delete', e);
        }
      }
    }),
  );
  return c;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const d = await startBenchDaemon(['--max-vms', String(VMS + 10), '--max-vcpus', String(VMS + 10)]);
  const shell = await mkdtemp(join(tmpdir(), 'uigniter-bench-app-'));
  const work = await mkdtemp(join(tmpdir(), 'uigniter-bench-api-'));
  const shmDir = `/dev/shm/uigniter-bench-api-${process.pid}`;
  let watcher: ExecWatcher | null = null;
  try {
    // A static busybox app: boots in about a second, 48 MiB, so 100 VMs fit anywhere.
    await copyFile('/bin/busybox', join(shell, 'busybox'));
    await chmod(join(shell, 'busybox'), 0o755);
    await writeFile(join(shell, 'uigniter.json'), JSON.stringify({ entry: 'busybox', args: ['sleep', '100000'], memMiB: 48 }));
    await d.cli(['image', 'build', shell, '--name', 'sleeper']);
    await mkdir(shmDir, { recursive: true, mode: 0o700 });

    // The exact command line of a VM this daemon launched.
    const src = await d.client.run({ image: 'sleeper', name: 'argv-source', boot: 'cold' }, 'launched');
    const tpl = await captureArgv(src, work);
    await d.client.remove('argv-source', { force: true });

    watcher = new ExecWatcher([`${d.home}/vms/`, `${work}/raw-`]);
    const t = {
      dExec: [] as number[],
      rExec: [] as number[],
      dAnswer: [] as number[],
      rQmp: [] as number[],
      rTap: [] as number[],
      plan: [] as number[],
      vmm: [] as number[],
    };
    // One warm-up of each (first spawn of ip/nsenter/QEMU pages in binaries), not counted.
    await daemonRun(d, 'warm', null);
    await rawRun(d, await freshArgv(tpl, work, shmDir, 0), null);
    for (let i = 0; i < RUNS; i++) {
      const kinds = ['daemon-exec', 'raw-exec', 'daemon-answer', 'raw-qmp'] as const;
      const round = [...kinds.slice(i % 4), ...kinds.slice(0, i % 4)];
      for (const k of round) {
        if (k === 'daemon-exec') t.dExec.push((await daemonRun(d, `x${i}`, watcher)).execMs);
        else if (k === 'raw-exec') t.rExec.push((await rawRun(d, await freshArgv(tpl, work, shmDir, 2 * i + 1), watcher)).execMs);
        else if (k === 'daemon-answer') {
          const r = await daemonRun(d, `a${i}`, null);
          t.dAnswer.push(r.answerMs);
          t.plan.push(r.plan);
          t.vmm.push(r.vmm);
        } else {
          const r = await rawRun(d, await freshArgv(tpl, work, shmDir, 2 * i + 2), null);
          t.rQmp.push(r.qmpMs);
          t.rTap.push(r.tapMs);
        }
        await sleep(SETTLE_MS);
      }
    }
    await watcher.close();
    watcher = null;

    process.stdout.write(`\nbench/api: POST /vm/run?wait=launched {boot:'cold'} (static busybox image, 48 MiB) vs its QEMU command line by hand, ${RUNS} runs of each, interleaved; ms\n\n`);
    printTable(
      ['measure (client side)', 'n', 'min', 'p50', 'p99', 'max'],
      [
        spreadRow('(1) request -> QEMU exec seen in /proc (pid checked against the answer)', t.dExec, 1, 1),
        spreadRow('    baseline: tap by hand + spawn nsenter..qemu -> QEMU exec seen', t.rExec, 1, 1),
        spreadRow('(2) request -> answer (wait=launched: QMP handshake done)', t.dAnswer, 1, 1),
        spreadRow('    baseline: tap by hand + same argv -> QMP greeting + qmp_capabilities', t.rQmp, 1, 1),
        spreadRow('    of which the tap by hand (ip -n <ns> -batch)', t.rTap, 1, 1),
        spreadRow('    daemon Server-Timing plan (request -> VMM spawn, inside the daemon)', t.plan, 1, 1),
        spreadRow('    daemon Server-Timing vmm (spawn -> QMP ready, inside the daemon)', t.vmm, 1, 1),
      ],
    );
    const r1 = median(t.dExec) - median(t.rExec);
    process.stdout.write(`\n(1) daemon overhead before QEMU = p50 difference ${r1.toFixed(1)} ms (ratio ${(median(t.dExec) / median(t.rExec)).toFixed(2)}); goal < 20 ms -> ${r1 < 20 ? 'met' : 'NOT met'}\n`);
    process.stdout.write(`(2) ratio of p50 daemon/by hand ${(median(t.dAnswer) / median(t.rQmp)).toFixed(2)} (+${(median(t.dAnswer) - median(t.rQmp)).toFixed(1)} ms); p99 ${(spread(t.dAnswer).p99 / spread(t.rQmp).p99).toFixed(2)}\n`);

    // ---- GET /vm
    process.stdout.write(`\nrecording ${VMS} VMs (${VMS_RUNNING ? 'launched, then waited for until all run' : 'each launched, then stopped at once'})...\n`);
    for (let i = 0; i < VMS; i++) {
      await d.client.run({ image: 'sleeper', name: `v${i}`, boot: 'cold' }, 'launched');
      if (!VMS_RUNNING) await d.client.stop(`v${i}`, 0);
    }
    if (VMS_RUNNING) {
      // Measure once they are all up and idle, not while 100 guests boot on the same cores.
      for (let i = 0; i < 600; i++) {
        const vms = await d.client.list();
        if (vms.every((v) => v.state === 'running')) break;
        if (vms.some((v) => v.state === 'failed')) throw new Error('a recorded VM failed to boot');
        await sleep(1000);
      }
    }
    await sleep(2000);
    const body = await (await fetch(`${d.url}/vm`)).text();
    const listed = (JSON.parse(body) as { vms: unknown[] }).vms.length;
    // CPU: the daemon process, the recorded VMs' QEMUs (a fixed set: the churned VMs are not
    // in it) and the whole host (other users of this machine included).
    const vmPids = (await d.client.list()).flatMap((v) => (v.pid ? [v.pid] : []));
    const groups = { daemon: () => [d.child.pid!], vms: () => vmPids };
    const cpuText = (c: Record<string, number> & { host: number; hostCores: number }): string[] => [c.daemon!.toFixed(0), c.vms!.toFixed(0), `${c.host.toFixed(0)} of ${(c.hostCores * 100).toFixed(0)}`];
    const rest = cpuWindow(groups);
    await sleep(5000);
    const atRest = cpuText(await rest.stop());
    const rows: (string | number)[][] = [['at rest, no requests (5 s)', '-', '-', '-', '-', '-', '-', '-', ...atRest, '-']];
    const rps: Record<'idle' | 'churn', number[]> = { idle: [], churn: [] };
    let bad = 0;
    for (let round = 0; round < LOAD_ROUNDS; round++) {
      for (const mode of round % 2 === 0 ? (['idle', 'churn'] as const) : (['churn', 'idle'] as const)) {
        const stop = { done: false };
        const bg = mode === 'churn' ? churn(d, String(round), stop) : null;
        const cpu = cpuWindow(groups);
        const r = await loadTest(`${d.url}/vm`).finally(() => (stop.done = true));
        const used = cpuText(await cpu.stop());
        const c = await bg;
        rps[mode].push(r.rps);
        bad += r.badStatus + r.socketErrors;
        const churnText = c
          ? `${c.created} created / ${c.deleted} deleted, create p50 ${median(c.createMs).toFixed(0)} ms${Object.keys(c.errors).length ? `, errors: ${Object.entries(c.errors).map(([k, n]) => `${k} x${n}`).join('; ')}` : ''}`
          : '-';
        rows.push([mode === 'churn' ? 'while VMs are created/deleted' : 'idle', r.tool, r.requests, r.rps.toFixed(0), r.p50, r.p99, r.badStatus, r.socketErrors, ...used, churnText]);
      }
    }
    process.stdout.write(`\n(3) GET /vm with ${listed} VMs recorded (${VMS_RUNNING ? 'running' : 'stopped'}; ${(body.length / 1024).toFixed(0)} KiB of JSON), from another process, ${LOAD_ROUNDS} rounds alternating\n\n`);
    printTable(['background', 'tool', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'HTTP >= 400', 'socket errors', 'daemon CPU %', `${vmPids.length} VMs CPU %`, 'host busy %', 'background loops (2)'], rows);
    process.stdout.write('(CPU in % of one core over the window; socket errors include wrk timeouts, answers slower than 2 s)\n');
    const worst = Math.min(...rps.churn);
    process.stdout.write(`\nreq/s while churning / idle (p50 of rounds): ${(median(rps.churn) / median(rps.idle)).toFixed(2)}\n`);
    process.stdout.write(`goal: 0 failures and > 5000 req/s while churning -> ${bad === 0 && worst > 5000 ? 'met' : 'NOT met'} (failures ${bad}, lowest ${worst.toFixed(0)} req/s)\n`);
  } finally {
    await watcher?.close();
    await d.close();
    const left = await removeDaemonMemoryDir(d.home);
    if (left.length > 0) process.stderr.write(`the daemon left guest RAM files behind: ${left.join(', ')}\n`);
    await rm(shell, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
    await rm(shmDir, { recursive: true, force: true });
  }
}

await main();
