/**
 * bench/density: how many idle microVMs fit on this host and what each costs, in one run,
 * with a daemon of its own (startBenchDaemon: own home, namespace, 172.27.0.0/22). The
 * daemon gets `--max-vms 2000` and otherwise its DEFAULT limits (vCPUs, memory, ...): a 429
 * limit_exceeded from POST /vm/run is a legitimate stop reason, recorded and printed.
 * Every VM: image `hello` (test/fixtures/hello, port 8080), memMiB MEM_MIB (128).
 *
 *   1. cold       POST /vm/run {image:'hello', memMiB, boot:'cold'} (wait=ready), BATCH
 *                 requests in flight at a time, batch after batch, until a stop rule fires:
 *                 MemAvailable (/proc/meminfo, read before each batch) < FLOOR_GIB; or a 429;
 *                 or any other failed start; or MAX_VMS VMs; or the host's CPU saturated
 *                 (after each batch, with no POST in flight: /proc/stat busy over 2 s >
 *                 90% of its cores, and again over 2 s taken 8 s later: VMs that just came
 *                 up are still busy for a few seconds). Then the VMs idle IDLE_S s, and over the next WINDOW_S s:
 *                   idle CPU/VM   utime+stime of each VMM process (the VM view's `pid`, QEMU
 *                                 itself: all its threads) over the window / the window's
 *                                 wall time, as percent of one core;
 *                   daemon CPU    the same for the daemon's process (d.child.pid);
 *                   host busy     /proc/stat busy time of all cores over the window;
 *                   PSS/VM        /proc/<pid>/smaps_rollup of each VMM at the window's end:
 *                                 Pss, Pss_Anon, Pss_Shmem (its guest RAM file on tmpfs,
 *                                 for a cold VM), Pss_File (page cache it maps: a clone's
 *                                 template memory file, the image's disks), Rss; total Pss.
 *                 Then GET http://<ip>:8080/ of every VM (one connection each, 2 s to
 *                 connect, 10 s for the answer, up to 3 attempts), DELETE /vm/{id}?force=true
 *                 of all (16 in flight), and a check that GET /vm is empty and that none of
 *                 the VMM pids is alive.
 *   2. template   POST /vm/run {image, memMiB} (boot auto: the daemon saves a template of
 *                 that spec once the VM is ready); GET /templates polled until it lists the
 *                 template (GET /snapshots lists named snapshots only); that VM deleted.
 *                 Then clones, POST /vm/run {image, memMiB, boot:'template'} (each must come
 *                 up with origin 'template'), filled, idled and measured as in 1; every clone
 *                 must answer GET / at the end. One clone's QEMU command line
 *                 (/proc/<pid>/cmdline) is kept for 3.
 *   3. raw QEMU   the baseline: clones of the same template started by this bench with that
 *                 command line, changed only where it must be: its run directory's paths
 *                 (qmp socket, pid file, console log, agent socket) -> a temp dir per clone;
 *                 -name -> density-raw-<bench pid>-<n> (so no daemon takes it for its own);
 *                 -chroot, -runas, -sandbox dropped; the tap netdev's `ifname` -> a tap of the
 *                 raw clone's own (`dr<n>`, which QEMU creates and removes itself) in a
 *                 namespace of the bench's (`density-<bench pid>`, QEMU started in it through
 *                 nsenter, as the daemon does), attached to nothing. The NIC cannot go without
 *                 a tap backend: the template's virtio-net state was saved with vnet_hdr
 *                 offloads, and QEMU 7.2 refuses to load it into a NIC with no peer or a
 *                 user-mode one ("saved image requires vnet_hdr=on"). `-S -incoming defer`
 *                 stays: QEMU 7.2 has no `migration.x-ignore-shared` property for -global
 *                 (only the QMP capability), so the load goes as the daemon's does, over the
 *                 clone's QMP socket: migrate-set-capabilities x-ignore-shared + events,
 *                 migrate-set-parameters announce-rounds 0, migrate-incoming
 *                 `exec:cat '<template>/state'` (QEMU reads the file itself), wait for
 *                 'completed', `cont`. The guest RAM stays the template's memory file mapped
 *                 MAP_PRIVATE (share=off). A raw clone counts once QMP query-status says
 *                 'running' and its process lives. After `cont` (unless RAW_RENEW=0, which
 *                 leaves the guest with the template's identity and its app frozen, a
 *                 cheaper guest than the daemon's clones) the bench sends the guest agent (agent.sock) the `renew` the
 *                 daemon sends (the address and MAC of the probe clone's command line,
 *                 hostname density-raw-<pid>-<n>, the host's clock, 64 random bytes), so the
 *                 app runs on as in the daemon's clones. Filled to the same stop rules (no
 *                 429 here), idled and measured as in 1 (no network: no GET), then killed
 *                 (SIGKILL) and checked gone. Printed: clones of 2 / raw clones of 3.
 *   4. rate       VMs/s through the API, cold and template alternating, at concurrency 1, 4
 *                 and 16: N = RATE_N (default max(16, 2 x concurrency)) POST /vm/run
 *                 (wait=ready) with `concurrency` in flight at a time; time = from just before
 *                 the first POST is sent to the last POST's answer received; VMs/s = VMs made
 *                 / that time; beside it the spread of each POST's own answer time. The VMs
 *                 are deleted between runs, untimed.
 *
 * Goals (computed, printed at the end): clones' PSS/VM p50 < half the guest RAM; clones'
 * idle CPU/VM p50 <= 0.2% of a core; >= 550 clones; clones >= 0.93 x raw clones; >= 10 VMs/s
 * from a template (best concurrency). On any error, or SIGINT/SIGTERM, every VM and raw QEMU
 * the bench made is removed and the daemon closed.
 *
 *   node dist/bench/density.js                          (root; takes the machine for long)
 *   MAX_VMS=6 BATCH=3 IDLE_S=2 WINDOW_S=3 RATE_N=4 node dist/bench/density.js   (quick check)
 * Env: MEM_MIB (128), BATCH (8), FLOOR_GIB (3), MAX_VMS (no cap), IDLE_S (10), WINDOW_S (20), RATE_N,
 * RAW_RENEW (1), PHASES (cold,clones,raw,rate: which of the four run; raw needs clones),
 * CLONE_CODE_CACHE_MIB (the clones' codeCacheMiB, phases 2 and 4; default: the
 * daemon's, 32).
 *
 * After the answers of phases 1 and 2, GET /vm/{id}/stats of every VM: its translation
 * cache's bound, the code it holds and how many times it filled up since its VMM started
 * (a clone's renewal and one request fit, or the bound is too small for it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError, type SnapshotView } from '../src/client/client.js';
import { parseOpts } from '../src/drivers/qemu/command-line.js';
import { setMigration, shellQuote, waitForMigration, waitRunStateLeaves } from '../src/drivers/qemu/migration.js';
import { SNAPSHOT_MEMORY, SNAPSHOT_STATE } from '../src/drivers/qemu/qemu-process.js';
import { QmpClient } from '../src/drivers/qemu/qmp-client.js';
import type { GuestIdentity } from '../src/guest/agent-protocol.js';
import { GuestAgent } from '../src/guest/guest-agent.js';
import { run } from '../src/util/exec.js';
import { Paths } from '../src/util/paths.js';
import { processAlive } from '../src/util/process.js';
import { connectUnix, cpuWindow, getOnce, printTable, removeDaemonMemoryDir, ROOT, smapsRollupMiB, spread, spreadRow, startBenchDaemon, type BenchDaemon } from './lib.js';

const IMAGE = 'hello';
const APP_PORT = 8080;
const MEM_MIB = envInt('MEM_MIB', 128);
const BATCH = envInt('BATCH', 8);
const FLOOR_GIB = Number(process.env.FLOOR_GIB ?? 3);
const MAX_VMS = process.env.MAX_VMS ? envInt('MAX_VMS', 0) : Infinity;
const IDLE_S = Number(process.env.IDLE_S ?? 10);
const WINDOW_S = Number(process.env.WINDOW_S ?? 20);
const RATE_N = process.env.RATE_N ? envInt('RATE_N', 0) : null;
const RAW_RENEW = process.env.RAW_RENEW !== '0';
const PHASES = new Set((process.env.PHASES ?? 'cold,clones,raw,rate').split(',').map((p) => p.trim()));
for (const p of PHASES) if (!['cold', 'clones', 'raw', 'rate'].includes(p)) throw new Error(`PHASES: unknown phase '${p}' (cold, clones, raw, rate)`);
if (PHASES.has('raw') && !PHASES.has('clones')) throw new Error('PHASES: raw needs clones (its clones copy a clone\'s command line)');
const CLONE_CODE_CACHE_MIB = process.env.CLONE_CODE_CACHE_MIB ? envInt('CLONE_CODE_CACHE_MIB', 0) : null;
const CONCURRENCIES = [1, 4, 16];
/** The daemon's VM count limit; its vCPU and memory limits stay its defaults. */
const DAEMON_MAX_VMS = 2000;
/** The host counts as saturated above this share of its cores busy, with no boot running. */
const CPU_SATURATED = 0.9;
const CPU_CHECK_MS = 2000;
/** When busy right after a batch, the host is measured again this much later. */
const CPU_RECHECK_MS = 8000;

async function hostBusy(): Promise<{ host: number; hostCores: number }> {
  const w = cpuWindow({});
  await sleep(CPU_CHECK_MS);
  return w.stop();
}
/** Requests in flight when deleting, and when checking replies. */
const DELETE_BATCH = 16;
const GET_BATCH = 32;
/** A raw clone must be running (QMP) within this. */
const RAW_START_TIMEOUT_MS = 120_000;
/** Pause after a deletion round: a QEMU that just ended still frees its memory for a moment. */
const SETTLE_MS = 500;
const RAW_TAG = `density-raw-${process.pid}`;
/** The raw clones' taps live here (made before phase 3, removed at the end). */
const RAW_NETNS = `density-${process.pid}`;
let rawNetnsMade = false;

const GOAL = { pssShare: 0.5, idleCpuPct: 0.2, clones: 550, rawRatio: 0.93, templateRate: 10 };

function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer (got '${v}')`);
  return n;
}

const log = (m: string): void => void process.stderr.write(`${m}\n`);
const out = (m: string): void => void process.stdout.write(`${m}\n`);
const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');
const f3 = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : '-');
const errText = (e: unknown): string => (e instanceof ApiError ? `${e.status} ${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e));

async function memAvailableGiB(): Promise<number> {
  const text = await readFile('/proc/meminfo', 'utf8');
  return Number(/^MemAvailable:\s+(\d+) kB$/m.exec(text)![1]) / 1024 ** 2;
}

/** One idle VM, of the daemon's or a raw QEMU: what the measurements need. */
interface Unit {
  key: string;
  pid: number;
  ip: string | null;
}

// ---------------------------------------------------------------- filling

interface Fill {
  units: Unit[];
  stop: string;
  failures: string[];
  seconds: number;
  memStartGiB: number;
  memEndGiB: number;
}

/**
 * Starts units BATCH at a time until a stop rule fires (see the header). `units` (the
 * caller's list, so that a failure later still removes them) receives those that came up,
 * batch by batch; the stop reason and the failed starts are returned.
 */
async function fill(label: string, startOne: (i: number) => Promise<Unit>, units: Unit[]): Promise<Fill> {
  const t0 = performance.now();
  const memStartGiB = await memAvailableGiB();
  const failures: string[] = [];
  let stop = '';
  let i = 0;
  while (!stop) {
    if (units.length >= MAX_VMS) {
      stop = `MAX_VMS=${MAX_VMS} reached`;
      break;
    }
    const mem = await memAvailableGiB();
    if (mem < FLOOR_GIB) {
      stop = `MemAvailable ${f2(mem)} GiB < floor ${FLOOR_GIB} GiB`;
      break;
    }
    const n = Math.min(BATCH, MAX_VMS - units.length);
    const tb = performance.now();
    const results = await Promise.allSettled(Array.from({ length: n }, () => startOne(i++)));
    for (const r of results) if (r.status === 'fulfilled') units.push(r.value);
    const rejected = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    const is429 = (e: unknown): e is ApiError => e instanceof ApiError && e.status === 429;
    const limited = rejected.filter(is429);
    const others = rejected.filter((e) => !is429(e));
    for (const e of others) failures.push(errText(e));
    if (limited[0]) stop = `${errText(limited[0])} (${limited.length} of the batch of ${n})`;
    else if (others.length) stop = `${others.length} start(s) failed (first: ${errText(others[0])})`;
    let cpu = await hostBusy();
    // VMs that just came up still run (a clone's renewal, a cold VM's app warming up): only
    // a saturation that outlasts that settling stops the fill.
    if (cpu.host > CPU_SATURATED * cpu.hostCores * 100) {
      await sleep(CPU_RECHECK_MS);
      cpu = await hostBusy();
    }
    log(`${label}: ${units.length} up (batch of ${n}: ${n - rejected.length} ok in ${f1((performance.now() - tb) / 1000)} s), MemAvailable ${f2(await memAvailableGiB())} GiB, host ${f1(cpu.host)}% busy of ${f1(cpu.hostCores)} cores`);
    if (!stop && cpu.host > CPU_SATURATED * cpu.hostCores * 100) {
      stop = `host CPU saturated: ${f1(cpu.host)}% busy of ${f1(cpu.hostCores * 100)}% (${f1(cpu.hostCores)} cores) over ${CPU_CHECK_MS / 1000} s with no boot running, still ${CPU_RECHECK_MS / 1000} s later`;
    }
  }
  return { units, stop, failures, seconds: (performance.now() - t0) / 1000, memStartGiB, memEndGiB: await memAvailableGiB() };
}

// ---------------------------------------------------------------- measuring

interface Measured {
  /** Per unit, in MiB: Pss, Pss_Anon, Pss_Shmem, Pss_File, Rss. */
  mem: Record<string, number[]>;
  /** Per unit, percent of one core over the window. */
  cpu: number[];
  daemonPct: number;
  hostPct: number;
  hostCores: number;
  /** Units whose process was gone by the window's end (not in cpu or mem). */
  died: string[];
  memAvailGiB: number;
}

const MEM_KEYS = ['Pss', 'Pss_Anon', 'Pss_Shmem', 'Pss_File', 'Rss'];

async function measure(label: string, units: Unit[], daemonPid: number | undefined): Promise<Measured> {
  log(`${label}: ${units.length} idle for ${IDLE_S} s, then measured over ${WINDOW_S} s`);
  await sleep(IDLE_S * 1000);
  const groups: Record<string, () => number[]> = { daemon: () => (daemonPid === undefined ? [] : [daemonPid]) };
  for (const u of units) groups[`vm:${u.key}`] = () => [u.pid];
  const w = cpuWindow(groups);
  await sleep(WINDOW_S * 1000);
  const r = await w.stop();
  const mem: Record<string, number[]> = Object.fromEntries(MEM_KEYS.map((k) => [k, [] as number[]]));
  const cpu: number[] = [];
  const died: string[] = [];
  for (const u of units) {
    const m = await smapsRollupMiB(u.pid).catch(() => null);
    if (!m || !processAlive(u.pid)) {
      died.push(u.key);
      continue;
    }
    for (const k of MEM_KEYS) mem[k]!.push(m[k] ?? NaN);
    cpu.push(r[`vm:${u.key}`]!);
  }
  return { mem, cpu, daemonPct: r.daemon!, hostPct: r.host, hostCores: r.hostCores, died, memAvailGiB: await memAvailableGiB() };
}

interface PhaseResult {
  name: string;
  count: number;
  stop: string;
  m: Measured;
  answered: number | null;
}

function printPhase(title: string, f: Fill, m: Measured, extra: string[]): void {
  out(`\n${title}`);
  out(`${f.units.length} VMs up, stop reason: ${f.stop}; filled in ${f1(f.seconds)} s; MemAvailable ${f2(f.memStartGiB)} GiB before, ${f2(f.memEndGiB)} GiB after the fill, ${f2(m.memAvailGiB)} GiB after the window`);
  if (f.failures.length) out(`failed starts (${f.failures.length}): ${[...new Set(f.failures)].slice(0, 5).join(' | ')}`);
  out('');
  printTable(['per VM (each VMM process)', 'n', 'min', 'p50', 'p99', 'max'], [
    spreadRow('PSS, MiB (smaps_rollup Pss)', m.mem.Pss!, 1, 1),
    spreadRow('  Pss_Anon, MiB', m.mem.Pss_Anon!, 1, 1),
    spreadRow('  Pss_Shmem, MiB', m.mem.Pss_Shmem!, 1, 1),
    spreadRow('  Pss_File, MiB', m.mem.Pss_File!, 1, 1),
    spreadRow('  Rss, MiB', m.mem.Rss!, 1, 1),
    spreadRow(`idle CPU, % of one core (over ${WINDOW_S} s)`, m.cpu, 1, 3),
  ]);
  const total = m.mem.Pss!.reduce((a, b) => a + b, 0);
  out(`\ntotal PSS of the VMMs ${f2(total / 1024)} GiB (${f1(total / Math.max(1, m.mem.Pss!.length))} MiB/VM, guest RAM ${MEM_MIB} MiB); all VMMs' CPU ${f2(m.cpu.reduce((a, b) => a + b, 0))}% of a core; daemon CPU ${f3(m.daemonPct)}% of a core; host ${f1(m.hostPct)}% busy of ${f1(m.hostCores)} cores`);
  if (m.died.length) out(`VMMs gone by the window's end (not counted above): ${m.died.length} (${m.died.slice(0, 5).join(', ')})`);
  for (const l of extra) out(l);
}

/** GET /vm/{id}/stats of each unit: what its translation cache holds and how often it filled up. */
async function codeCaches(d: BenchDaemon, units: Unit[]): Promise<string> {
  const used: number[] = [];
  const flushes: number[] = [];
  const bounds = new Set<number>();
  let none = 0;
  for (let i = 0; i < units.length; i += GET_BATCH) {
    await Promise.all(
      units.slice(i, i + GET_BATCH).map(async (u) => {
        const c = (await d.client.stats(u.key).catch(() => null))?.codeCache;
        if (!c) return void none++;
        used.push(c.usedMiB);
        flushes.push(c.flushes);
        bounds.add(c.boundMiB);
      }),
    );
  }
  if (used.length === 0) return `code cache (GET /vm/{id}/stats): no figure from any VM (${none} without one)`;
  const u = spread(used);
  const f = spread(flushes);
  return (
    `code cache (GET /vm/{id}/stats, after the answers): bound ${[...bounds].join('/')} MiB; code held min ${f1(u.min)}, p50 ${f1(u.p50)}, max ${f1(u.max)} MiB; ` +
    `filled up since the VMM started: p50 ${f.p50}, max ${f.max} times, ${flushes.filter((n) => n > 0).length}/${used.length} VMs at least once${none ? `; ${none} without a figure` : ''}`
  );
}

/**
 * GET http://<ip>:8080/ of each unit (GET_BATCH at a time, up to 3 attempts 500 ms apart):
 * how many answered, how many only on a retry, and the failures; `firstErrors` counts why
 * the first attempts that failed did (with how long they took), so that a retry says what
 * went wrong the first time.
 */
async function checkAnswers(units: Unit[]): Promise<{ ok: number; retried: number; failures: string[]; firstErrors: string }> {
  let ok = 0;
  let retried = 0;
  const failures: string[] = [];
  const first = new Map<string, number[]>();
  for (let i = 0; i < units.length; i += GET_BATCH) {
    await Promise.all(
      units.slice(i, i + GET_BATCH).map(async (u) => {
        if (!u.ip) return void failures.push(`${u.key}: no address`);
        let last = '';
        for (let a = 1; a <= 3; a++) {
          const t0 = performance.now();
          try {
            await getOnce(`http://${u.ip}:${APP_PORT}/`, 2000, 10_000);
            ok++;
            if (a > 1) retried++;
            return;
          } catch (e) {
            last = errText(e);
            if (a === 1) first.set(last, [...(first.get(last) ?? []), performance.now() - t0]);
            await sleep(500);
          }
        }
        failures.push(`${u.key} (${u.ip}): ${last}`);
      }),
    );
  }
  const firstErrors = [...first]
    .sort((a, b) => b[1].length - a[1].length)
    .map(([why, ms]) => `${ms.length} x '${why}' after ${f2(Math.min(...ms) / 1000)}-${f2(Math.max(...ms) / 1000)} s`)
    .join('; ');
  return { ok, retried, failures, firstErrors };
}

// ---------------------------------------------------------------- daemon VMs

/** A VMM pid that still runs the VM `id` (the pid may have been reused). */
function vmmAlive(pid: number, id: string): boolean {
  if (!processAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(id);
  } catch {
    return false;
  }
}

/**
 * DELETE /vm/{id}?force=true of every VM the daemon lists (and of `units`), DELETE_BATCH at
 * a time; then checks that GET /vm is empty and that none of the VMM pids lives. Throws if
 * anything is left.
 */
async function deleteAll(d: BenchDaemon, units: Unit[], label: string): Promise<void> {
  const t0 = performance.now();
  const listed = await d.client.list();
  const ids = [...new Set([...units.map((u) => u.key), ...listed.map((v) => v.id)])];
  const pids = new Map<number, string>([...units.map((u) => [u.pid, u.key] as const), ...listed.flatMap((v) => (v.pid ? [[v.pid, v.id] as const] : []))]);
  const errors: string[] = [];
  for (let i = 0; i < ids.length; i += DELETE_BATCH) {
    await Promise.all(
      ids.slice(i, i + DELETE_BATCH).map((id) =>
        d.client.raw('DELETE', `/vm/${encodeURIComponent(id)}?force=true`).catch((e: unknown) => {
          if (!(e instanceof ApiError && e.status === 404)) errors.push(`${id}: ${errText(e)}`);
        }),
      ),
    );
  }
  let alive = [...pids].filter(([pid, id]) => vmmAlive(pid, id));
  for (let k = 0; k < 100 && alive.length; k++) {
    await sleep(100);
    alive = alive.filter(([pid, id]) => vmmAlive(pid, id));
  }
  const left = await d.client.list();
  log(`${label}: deleted ${ids.length} VMs in ${f1((performance.now() - t0) / 1000)} s; GET /vm lists ${left.length}; VMM pids alive ${alive.length}`);
  if (errors.length || left.length || alive.length) {
    throw new Error(`${label}: deleting left ${left.length} VM(s) listed (${left.map((v) => `${v.name} ${v.state}`).join(', ')}), ${alive.length} VMM(s) alive (${alive.map(([p]) => p).join(', ')}); errors: ${errors.slice(0, 3).join(' | ') || 'none'}`);
  }
  await sleep(SETTLE_MS);
}

async function runVm(d: BenchDaemon, boot: 'cold' | 'template'): Promise<Unit> {
  const cache = boot === 'template' && CLONE_CODE_CACHE_MIB !== null ? { codeCacheMiB: CLONE_CODE_CACHE_MIB } : {};
  const vm = await d.client.run({ image: IMAGE, memMiB: MEM_MIB, boot, ...cache });
  if (vm.origin !== boot) throw new Error(`VM ${vm.name} came up as '${vm.origin}', not '${boot}'`);
  if (!vm.pid) throw new Error(`VM ${vm.name} has no VMM pid`);
  return { key: vm.id, pid: vm.pid, ip: vm.ip };
}

const isHelloTemplate = (s: SnapshotView): boolean => s.kind === 'template' && (s.image === IMAGE || s.image.startsWith(`${IMAGE}:`)) && s.memMiB === MEM_MIB;

/** One boot:'auto' VM; GET /templates polled until the template of its spec is listed; the VM deleted. */
async function makeTemplate(d: BenchDaemon): Promise<SnapshotView> {
  const t0 = performance.now();
  const vm = await d.client.run({ image: IMAGE, memMiB: MEM_MIB, name: 'density-tpl-source' });
  const ready = performance.now();
  try {
    for (let i = 0; i < 1200; i++) {
      const t = (await d.client.templates()).find(isHelloTemplate);
      if (t) {
        log(`template ${t.name}: boot:'auto' VM (${vm.origin}) ready in ${f2((ready - t0) / 1000)} s, listed ${f2((performance.now() - ready) / 1000)} s after; memory '${t.memory}', ${f1(t.sizeBytes / 1024 ** 2)} MiB on disk`);
        return t;
      }
      await sleep(100);
    }
    throw new Error('no template was listed within 120 s of the boot:auto VM being ready');
  } finally {
    await deleteAll(d, vm.pid ? [{ key: vm.id, pid: vm.pid, ip: vm.ip }] : [], 'template source');
  }
}

// ---------------------------------------------------------------- raw QEMU clones

interface RawClone {
  n: number;
  dir: string;
  child: ChildProcess;
  exited: Promise<void>;
}

const raws = new Map<number, RawClone>();

/**
 * The daemon-restored clone's argv made into raw clone `n`'s (see the header). Throws when
 * the argv is not what the rewrite expects.
 */
function rawArgv(orig: string[], runDir: string, dir: string, n: number): string[] {
  const name = `${RAW_TAG}-${n}`;
  const argv: string[] = [];
  let netdevs = 0;
  for (let i = 0; i < orig.length; i++) {
    const a = orig[i]!;
    const next = orig[i + 1];
    if (a === '-runas' || a === '-chroot' || a === '-sandbox') {
      i++;
    } else if (a === '-netdev') {
      if (!next || !/^tap,(.*,)?ifname=[^,]+/.test(next)) throw new Error(`the clone's netdev is not a tap with an ifname: ${next}`);
      argv.push(a, next.replace(/ifname=[^,]+/, `ifname=dr${n}`));
      netdevs++;
      i++;
    } else if (a === '-name') {
      argv.push(a, `${name},process=${name}`);
      i++;
    } else {
      argv.push(a.split(`${runDir}/`).join(`${dir}/`));
    }
  }
  if (!/\0-S\0/.test(argv.join('\0')) || !/\0-incoming\0defer(\0|$)/.test(argv.join('\0'))) throw new Error("the clone's command line has no '-S -incoming defer'");
  if (netdevs !== 1) throw new Error(`the clone's command line has ${netdevs} netdevs, not one`);
  if (argv.some((a) => a.includes(runDir))) throw new Error(`the raw clone's command line still names ${runDir}`);
  return argv;
}

/** The guest identity a raw clone is renewed with (RAW_RENEW=1): the probe clone's address and MAC. */
type RawIdentity = Omit<GuestIdentity, 'hostname' | 'timeMs' | 'entropy'>;

function identityOf(argv: string[]): RawIdentity {
  const append = argv[argv.indexOf('-append') + 1] ?? '';
  const m = /(?:^| )ip=([\d.]+)::([\d.]+):([\d.]+):/.exec(append);
  const nic = argv.find((a, i) => argv[i - 1] === '-device' && a.startsWith('virtio-net-device'));
  const mac = nic ? parseOpts(nic).props.get('mac') : undefined;
  if (!m || !mac) throw new Error(`the clone's command line names no ip= or no NIC MAC: ${append}`);
  const prefix = m[3]!.split('.').reduce((a, o) => a + Number(o).toString(2).replace(/0/g, '').length, 0);
  return { ip: m[1]!, gateway: m[2]!, prefix, mac };
}


/**
 * Starts raw clone n, loads the template's state into it over QMP, resumes it (and renews
 * its identity when `identity` is given), and waits until QMP says it runs.
 */
async function startRaw(work: string, argvFor: (dir: string, n: number) => string[], statePath: string, identity: RawIdentity | null, n: number): Promise<Unit> {
  const dir = join(work, `raw-${n}`);
  await mkdir(dir, { recursive: true });
  const argv = argvFor(dir, n);
  const logPath = join(dir, 'qemu.log');
  const fd = openSync(logPath, 'a');
  // nsenter execs QEMU: the pid is QEMU's.
  const child = spawn('nsenter', [`--net=/run/netns/${RAW_NETNS}`, '--', ...argv], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  raws.set(n, { n, dir, child, exited });
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid!));
    child.once('error', reject);
  });
  const why = async (): Promise<string> => (await readFile(logPath, 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ') || 'no message';
  const early = exited.then(async () => {
    throw new Error(`raw clone ${n}: qemu exited: ${await why()}`);
  });
  early.catch(() => undefined);
  let qmp: QmpClient | null = null;
  try {
    qmp = await Promise.race([QmpClient.connect(join(dir, 'qmp.sock'), 30_000), early]);
    await setMigration(qmp, true, true);
    await qmp.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(statePath)}` });
    await waitForMigration(qmp, { gone: exited, why, timeoutMs: RAW_START_TIMEOUT_MS, what: `raw clone ${n}: loading the template` });
    await waitRunStateLeaves(qmp, ['inmigrate', 'finish-migrate']);
    await qmp.execute('cont');
    if (identity) {
      const agent = new GuestAgent(await connectUnix(join(dir, 'agent.sock'), Date.now() + 10_000));
      try {
        await agent.renew({ ...identity, hostname: `${RAW_TAG}-${n}`, timeMs: Date.now(), entropy: randomBytes(64) });
      } finally {
        agent.close();
      }
    }
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { status } = await Promise.race([qmp.execute<{ status: string }>('query-status'), early]);
      if (status === 'running') break;
      if (Date.now() > deadline) throw new Error(`raw clone ${n}: QEMU state '${status}' 10 s after cont: ${await why()}`);
      await sleep(20);
    }
    if (!processAlive(pid)) throw new Error(`raw clone ${n}: qemu exited: ${await why()}`);
    return { key: `raw-${n}`, pid, ip: null };
  } catch (e) {
    await killRaw(n);
    throw e;
  } finally {
    qmp?.close();
  }
}

async function killRaw(n: number): Promise<void> {
  const r = raws.get(n);
  if (!r) return;
  if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  await Promise.race([r.exited, sleep(10_000)]);
  await rm(r.dir, { recursive: true, force: true });
  raws.delete(n);
}

/** Kills every raw clone; throws if one still lives. */
async function killAllRaw(label: string): Promise<void> {
  const t0 = performance.now();
  const pids = [...raws.values()].map((r) => r.child.pid!);
  const all = [...raws.keys()];
  for (let i = 0; i < all.length; i += DELETE_BATCH) await Promise.all(all.slice(i, i + DELETE_BATCH).map(killRaw));
  const alive = pids.filter((p) => processAlive(p));
  log(`${label}: killed ${pids.length} raw QEMUs in ${f1((performance.now() - t0) / 1000)} s; alive ${alive.length}`);
  if (alive.length) throw new Error(`${label}: raw QEMU pids still alive: ${alive.join(', ')}`);
  await sleep(SETTLE_MS);
}

/** Last resort on a signal or exit: SIGKILL every raw clone (synchronous). */
function killRawSync(): void {
  for (const r of raws.values()) {
    try {
      if (r.child.exitCode === null) r.child.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}

// ---------------------------------------------------------------- creation rate

interface RateRun {
  kind: 'cold' | 'template';
  conc: number;
  n: number;
  ok: number;
  seconds: number;
  answers: number[];
  failures: string[];
}

async function rateRun(d: BenchDaemon, kind: 'cold' | 'template', conc: number): Promise<RateRun> {
  const n = RATE_N ?? Math.max(16, 2 * conc);
  const made: Unit[] = [];
  const answers: number[] = [];
  const failures: string[] = [];
  let next = 0;
  let last = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      const s = performance.now();
      try {
        made.push(await runVm(d, kind));
        answers.push(performance.now() - s);
      } catch (e) {
        failures.push(errText(e));
      }
      last = performance.now();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(conc, n) }, worker));
  } finally {
    await deleteAll(d, made, `rate ${kind} x${conc}`);
  }
  const r: RateRun = { kind, conc, n, ok: made.length, seconds: (last - t0) / 1000, answers, failures };
  log(`rate ${kind} at concurrency ${conc}: ${r.ok}/${n} in ${f2(r.seconds)} s = ${f2(r.ok / r.seconds)} VMs/s${failures.length ? `; failures: ${failures[0]}` : ''}`);
  return r;
}

// ---------------------------------------------------------------- end checks

/** pids (not this process) whose command line contains `needle`. */
async function pidsWith(needle: string): Promise<number[]> {
  const { readdir } = await import('node:fs/promises');
  const pids: number[] = [];
  for (const e of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    const cmd = await readFile(`/proc/${e}/cmdline`, 'latin1').catch(() => '');
    if (cmd.includes(needle) && processAlive(Number(e))) pids.push(Number(e));
  }
  return pids;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (the daemon makes a namespace and taps)');
  if (!(FLOOR_GIB >= 0) || !(IDLE_S >= 0) || !(WINDOW_S > 0)) throw new Error('FLOOR_GIB and IDLE_S must be >= 0, WINDOW_S > 0');
  const work = await mkdtemp(join(tmpdir(), 'uigniter-bench-density-'));
  let d: BenchDaemon | null = null;
  // Beside startBenchDaemon's own handler (which closes the daemon, then exits); before the
  // daemon is up, this one exits itself.
  const onSignal = (): void => {
    killRawSync();
    if (d === null) process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // After a signal (startBenchDaemon's handler closes the daemon, then exits): what is ours.
  process.on('exit', () => {
    killRawSync();
    if (rawNetnsMade) spawnSync('ip', ['netns', 'del', RAW_NETNS]);
    rmSync(work, { recursive: true, force: true });
    if (d) rmSync(new Paths(d.home).memory, { recursive: true, force: true });
  });
  let failed = false;
  try {
    d = await startBenchDaemon(['--max-vms', String(DAEMON_MAX_VMS)]);
    const daemon = d;
    const daemonPid = d.child.pid;
    await d.cli(['image', 'build', join(ROOT, 'test', 'fixtures', IMAGE), '--name', IMAGE]);
    const image = (await d.client.images()).find((i) => i.name === IMAGE)!;
    const memTotal = Number(/^MemTotal:\s+(\d+) kB$/m.exec(await readFile('/proc/meminfo', 'utf8'))![1]) / 1024 ** 2;
    out(`bench/density: image ${IMAGE} (guest ${image.runtime}, ${image.vcpus} vCPU), ${MEM_MIB} MiB per VM; host ${f1(memTotal)} GiB RAM, MemAvailable ${f2(await memAvailableGiB())} GiB at start`);
    out(`stop rules: MemAvailable < ${FLOOR_GIB} GiB, a 429, a failed start, ${Number.isFinite(MAX_VMS) ? `MAX_VMS=${MAX_VMS}` : 'no VM cap'}, host > ${CPU_SATURATED * 100}% busy after a batch; batches of ${BATCH}; idle ${IDLE_S} s, window ${WINDOW_S} s`);
    out(`daemon: --max-vms ${DAEMON_MAX_VMS}, other limits its defaults (GET /healthz: ${JSON.stringify(await d.client.health())})`);
    const results: PhaseResult[] = [];

    // 1. cold
    if (PHASES.has('cold')) {
      const cold: Unit[] = [];
      const fc = await fill('cold', () => runVm(daemon, 'cold'), cold);
      const mc = await measure('cold', cold, daemonPid);
      const ac = await checkAnswers(cold);
      printPhase(`phase 1, cold: POST /vm/run {image:'${IMAGE}', memMiB:${MEM_MIB}, boot:'cold'}`, fc, mc, [
        `GET http://<ip>:${APP_PORT}/ answered by ${ac.ok}/${cold.length}${ac.retried ? ` (${ac.retried} after a retry; their first attempts: ${ac.firstErrors})` : ''}${ac.failures.length ? `; failures: ${ac.failures.slice(0, 10).join(' | ')}` : ''}`,
        await codeCaches(daemon, cold),
      ]);
      results.push({ name: 'cold', count: cold.length, stop: fc.stop, m: mc, answered: ac.ok });
      await deleteAll(d, cold, 'cold');
    }

    // 2. template clones
    let cmdline: string[] = [];
    let tpl: SnapshotView | null = null;
    if (PHASES.has('clones')) {
      tpl = await makeTemplate(d);
      if (tpl.memory !== 'file') throw new Error(`template ${tpl.name} has memory '${tpl.memory}': the raw clones need a 'file' template`);
      const clones: Unit[] = [];
      const ft = await fill('clones', () => runVm(daemon, 'template'), clones);
      const mt = await measure('clones', clones, daemonPid);
      const at = await checkAnswers(clones);
      const probe = clones[0];
      if (!probe) throw new Error(`no clone started (${ft.stop})`);
      cmdline = (await readFile(`/proc/${probe.pid}/cmdline`, 'utf8')).replace(/\0$/, '').split('\0');
      const cacheText = CLONE_CODE_CACHE_MIB === null ? '' : `, codeCacheMiB:${CLONE_CODE_CACHE_MIB}`;
      printPhase(`phase 2, template clones: POST /vm/run {image:'${IMAGE}', memMiB:${MEM_MIB}, boot:'template'${cacheText}} (template ${tpl.name})`, ft, mt, [
        `GET http://<ip>:${APP_PORT}/ answered by ${at.ok}/${clones.length} clones${at.retried ? ` (${at.retried} after a retry; their first attempts: ${at.firstErrors})` : ''}${at.failures.length ? `; FAILURES (${at.failures.length}): ${at.failures.slice(0, 10).join(' | ')}` : ''}`,
        await codeCaches(daemon, clones),
      ]);
      results.push({ name: 'template clones', count: clones.length, stop: ft.stop, m: mt, answered: at.ok });
      await deleteAll(d, clones, 'clones');
    }

    // 3. raw QEMU clones of the same template
    if (PHASES.has('raw') && tpl) {
      const pidfile = cmdline[cmdline.indexOf('-pidfile') + 1]!;
      const runDir = dirname(pidfile);
      const memObj = cmdline.find((a, i) => cmdline[i - 1] === '-object' && a.startsWith('memory-backend-file'));
      const memPath = memObj ? parseOpts(memObj).props.get('mem-path') : undefined;
      if (!memPath || parseOpts(memObj!).props.get('share') !== 'off' || basename(memPath) !== SNAPSHOT_MEMORY) {
        throw new Error(`the clone's RAM is not a template memory file mapped share=off: ${memObj}`);
      }
      const snapDir = dirname(memPath);
      if (snapDir !== join(new Paths(d.home).snapshots, tpl.name)) throw new Error(`the clone maps ${memPath}, not template ${tpl.name}'s memory`);
      const statePath = join(snapDir, SNAPSHOT_STATE);
      await stat(statePath);
      const argvFor = (dir: string, n: number): string[] => rawArgv(cmdline, runDir, dir, n);
      const shown = argvFor('<dir>', 0);
      await run('ip', ['netns', 'add', RAW_NETNS]);
      rawNetnsMade = true;
      const rawUnits: Unit[] = [];
      const identity = RAW_RENEW ? identityOf(cmdline) : null;
      const fr = await fill('raw', (n) => startRaw(work, argvFor, statePath, identity, n), rawUnits);
      const mr = await measure('raw', rawUnits, daemonPid);
      printPhase(`phase 3, raw QEMU clones of template ${tpl.name} (no daemon; each on a tap of its own attached to nothing)`, fr, mr, [
        `raw clone command line: ${shown.map((a) => (/[\s']/.test(a) ? shellQuote(a) : a)).join(' ')}`,
        `run as: nsenter --net=/run/netns/${RAW_NETNS} -- <that>; then over QMP: migrate-set-capabilities x-ignore-shared+events, announce-rounds 0, migrate-incoming exec:cat ${statePath}, cont`,
        identity ? `then the guest agent's renew: ${identity.ip}/${identity.prefix} via ${identity.gateway}, MAC ${identity.mac}, hostname ${RAW_TAG}-<n>` : 'no guest agent renew (RAW_RENEW=0): the guest app stays frozen as in the template',
      ]);
      results.push({ name: 'raw QEMU clones', count: rawUnits.length, stop: fr.stop, m: mr, answered: null });
      await killAllRaw('raw');
    }
    const found = (n: string): PhaseResult | undefined => results.find((r) => r.name === n);
    const nClones = found('template clones')?.count ?? NaN;
    const ratio = nClones / (found('raw QEMU clones')?.count ?? NaN);
    if (Number.isFinite(ratio)) out(`\nuigniter clones / raw clones = ${nClones}/${found('raw QEMU clones')!.count} = ${f3(ratio)} (goal >= ${GOAL.rawRatio}); clones ${nClones} (goal >= ${GOAL.clones})`);

    // 4. creation rate
    const rates: RateRun[] = [];
    if (PHASES.has('rate')) {
      // Run alone, the phase makes the template itself (phase 2 makes it otherwise).
      if (tpl === null) tpl = await makeTemplate(d);
      for (const conc of CONCURRENCIES) for (const kind of ['cold', 'template'] as const) rates.push(await rateRun(d, kind, conc));
      out(`\nphase 4, creation rate: POST /vm/run {image:'${IMAGE}', memMiB:${MEM_MIB}, boot} (wait=ready), cold and template alternating`);
      out(`time = client side, from just before the first POST is sent to the last POST's answer; VMs/s = VMs made / time; answer = one POST's own time, s\n`);
      printTable(
        ['kind', 'concurrency', 'VMs ok/N', 'time s', 'VMs/s', 'answer min', 'p50', 'p99', 'max', 'failures'],
        rates.map((r) => {
          const s = spread(r.answers);
          return [r.kind, r.conc, `${r.ok}/${r.n}`, f2(r.seconds), f2(r.ok / r.seconds), f3(s.min / 1000), f3(s.p50 / 1000), f3(s.p99 / 1000), f3(s.max / 1000), r.failures.length ? `${r.failures.length}: ${r.failures[0]}` : '0'];
        }),
      );
    }

    // summary (a phase not run: its goals say "no data")
    const tplRates = rates.filter((r) => r.kind === 'template');
    const best = tplRates.reduce<RateRun | null>((a, b) => (a === null || b.ok / b.seconds > a.ok / a.seconds ? b : a), null);
    const bestRate = best ? best.ok / best.seconds : NaN;
    const verdict = (ok: boolean, have: boolean = true): string => (!have ? 'NOT met (no data)' : ok ? 'met' : 'NOT met');
    const info = (x: number, ok: boolean): string => (!Number.isFinite(x) ? '(info) no data' : `(info) ${ok ? 'would meet' : 'would not meet'}`);
    const rows: (string | number)[][] = [];
    for (const r of results) {
      const pss = spread(r.m.mem.Pss!).p50;
      const cpu = spread(r.m.cpu).p50;
      const goalRow = r.name === 'template clones';
      rows.push([`${r.name}: PSS/VM p50 < ${GOAL.pssShare} x guest RAM (${MEM_MIB * GOAL.pssShare} MiB)`, `${f1(pss)} MiB`, goalRow ? verdict(pss < MEM_MIB * GOAL.pssShare, Number.isFinite(pss)) : info(pss, pss < MEM_MIB * GOAL.pssShare)]);
      rows.push([`${r.name}: idle CPU/VM p50 <= ${GOAL.idleCpuPct}% of a core`, `${f3(cpu)}%`, goalRow ? verdict(cpu <= GOAL.idleCpuPct, Number.isFinite(cpu)) : info(cpu, cpu <= GOAL.idleCpuPct)]);
    }
    const clonePhase = found('template clones');
    rows.push([`template clones >= ${GOAL.clones}`, clonePhase ? `${nClones} (stop: ${clonePhase.stop})` : '-', verdict(nClones >= GOAL.clones, clonePhase !== undefined)]);
    rows.push([`clones / raw QEMU clones >= ${GOAL.rawRatio}`, Number.isFinite(ratio) ? `${f3(ratio)} (${nClones}/${found('raw QEMU clones')!.count})` : '-', verdict(ratio >= GOAL.rawRatio, Number.isFinite(ratio))]);
    rows.push([`VMs/s from a template >= ${GOAL.templateRate} (best concurrency)`, best ? `${f2(bestRate)} at concurrency ${best.conc}` : '-', verdict(bestRate >= GOAL.templateRate, Number.isFinite(bestRate))]);
    rows.push(['every clone answers GET / at the end', clonePhase ? `${clonePhase.answered}/${nClones}` : '-', verdict(clonePhase?.answered === nClones, clonePhase !== undefined)]);
    const stopOf = (n: string): string => {
      const r = found(n);
      return r ? `${r.count} VMs, stop: ${r.stop}` : 'not run';
    };
    out(`\nsummary (phases ${[...PHASES].join(',')}; cold: ${stopOf('cold')}; raw: ${stopOf('raw QEMU clones')})\n`);
    printTable(['goal', 'measured', 'result'], rows);
  } catch (e) {
    failed = true;
    log(`bench/density failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  } finally {
    await killAllRaw('cleanup').catch((e: unknown) => log(`cleanup: ${errText(e)}`));
    if (rawNetnsMade) await run('ip', ['netns', 'del', RAW_NETNS]).then(() => (rawNetnsMade = false), (e: unknown) => log(`cleanup: ${errText(e)}`));
    if (d) {
      await deleteAll(d, [], 'cleanup').catch((e: unknown) => log(`cleanup: ${errText(e)}`));
      await d.close().catch((e: unknown) => log(`cleanup: daemon: ${errText(e)}`));
      const left = await removeDaemonMemoryDir(d.home);
      if (left.length) log(`the daemon left guest RAM files behind: ${left.join(', ')}`);
    }
    await rm(work, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    const procs = [...(await pidsWith(RAW_TAG)), ...(d ? await pidsWith(d.home) : [])];
    const mine = [RAW_NETNS, ...(d ? [d.netns] : [])];
    const ns = (await run('ip', ['netns', 'list']).catch(() => ({ stdout: '' }))).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => mine.includes(n));
    out(`\ncleanup: processes of this bench left: ${procs.length ? procs.join(' ') : 'none'}; namespaces ${mine.join(', ')}: ${ns.length ? `LEFT: ${ns.join(' ')}` : 'gone'}`);
    if (procs.length || ns.length) failed = true;
  }
  if (failed) process.exitCode = 1;
}

await main();
