/**
 * bench/boot: boot-to-ready latency through uigniter against the same QEMU command line
 * run by hand (same kernel, initrd, disks, devices), interleaved, median of RUNS each.
 *
 *   node dist/bench/boot.js            (root; RUNS=7 by default)
 *
 * Two paths a user has:
 *   daemon   POST /vm/run (tap on the bridge, waits for ready)  vs  the daemon's own QEMU
 *            command line (nsenter + tap) started by hand with a tap made by hand
 *   vm run   the `uigniter vm run` CLI process (user-mode net)   vs  its QEMU command line
 *            started by hand
 * "Ready" is the same signal for all: the guest init's ready line once the app answers.
 * uigniter confines its QEMUs (chroot, own uid, seccomp, cgroup); the raw runs are plain
 * QEMU: the confinement flags are taken out of the captured command line, so the ratio
 * includes what confinement costs. Every boot is cold (boot: "cold").
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConsoleTail } from '../src/guest/console-tail.js';
import { run } from '../src/util/exec.js';
import { CACHE, CLI, median, printTable, processRssMiB, ROOT, startBenchDaemon } from './lib.js';

const RUNS = Number(process.env.RUNS ?? 9);
/** Pause between boots: a QEMU that just ended still frees its memory for a moment. */
const SETTLE_MS = 500;

/** The argv of a running process. */
async function argvOf(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((a, i, all) => i < all.length - 1 || a !== '');
}

/** The QEMU of a `vm run` process (its directory is named fg-<id>). */
async function foregroundQemu(): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  for (let i = 0; i < 500; i++) {
    for (const p of await readdir('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      const cmd = await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '');
      if (cmd.includes('qemu-system') && cmd.includes('uigniter-') && cmd.includes('/fg-')) return Number(p);
    }
    await sleep(20);
  }
  throw new Error('no qemu found for the vm run process');
}

/** The guest's own clock when its app was ready (kernel start to ready), from a console log. */
function guestReadyMs(log: string): number {
  const m = [...log.matchAll(/@uigniter \{"event":"ready","uptimeMs":(\d+)\}/g)].at(-1);
  return m ? Number(m[1]) : NaN;
}

const guestRaw: number[] = [];
const guestUigniter: number[] = [];

/** Starts a command line by hand and times it to the guest's ready line. */
async function rawBoot(argv: string[], consoleLog: string): Promise<number> {
  await truncate(consoleLog).catch(() => writeFile(consoleLog, ''));
  const tail = new ConsoleTail(consoleLog, { pollMs: 50 }).start();
  const ready = tail.waitFor((e) => e.event === 'ready', 120_000);
  const t0 = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore', detached: true });
  const ev = await ready;
  const ms = performance.now() - t0;
  guestRaw.push(ev.uptimeMs);
  await tail.stop();
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
  return ms;
}

/** QEMU's argv without the confinement options (-chroot DIR, -runas ID, -sandbox OPTS). */
function unconfined(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-chroot' || argv[i] === '-runas' || argv[i] === '-sandbox') i++;
    else out.push(argv[i]!);
  }
  return out;
}

/** Rewrites a VM's command line to use files in `dir` (its own directory is gone after it ends). */
function relocate(argv: string[], fromDir: string, toDir: string): string[] {
  return argv.map((a) => a.split(fromDir).join(toDir));
}

async function main(): Promise<void> {
  const d = await startBenchDaemon();
  const work = await mkdtemp(join(tmpdir(), 'uigniter-bench-boot-'));
  try {
    await d.cli(['image', 'build', join(ROOT, 'test', 'fixtures', 'hello'), '--name', 'hello']);

    // ---- daemon path: capture the exact command line of a VM the daemon boots
    const tpl = await d.client.run({ image: 'hello', name: 'template', boot: 'cold' });
    const daemonArgv = unconfined(await argvOf(tpl.pid!));
    const vmDir = join(d.home, 'vms', tpl.id);
    await copyFile(join(vmDir, 'config.img'), join(work, 'config.img'));
    const rss = await sleep(3000).then(() => processRssMiB(tpl.pid!));
    await d.client.stop('template'); // keeps its address, so no other VM takes it
    // /proc shows QEMU's own argv; the daemon started it through nsenter into its namespace.
    const rawDaemonArgv = ['nsenter', `--net=/run/netns/${d.netns}`, '--', ...relocate(daemonArgv, vmDir, work)];
    const tap = rawDaemonArgv.find((a) => a.startsWith('tap,'))!.match(/ifname=([^,]+)/)![1]!;
    const ns = (cmd: string): Promise<unknown> => run('ip', ['-n', d.netns, '-batch', '-'], { input: cmd });

    // ---- vm run path: capture the command line of a foreground VM
    const env = { ...process.env, UIGNITER_HOME: d.home, UIGNITER_CACHE: CACHE };
    const probe = spawn(process.execPath, [CLI, 'vm', 'run', 'hello'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let probeErr = '';
    probe.stderr!.on('data', (c: Buffer) => (probeErr += c.toString()));
    const probeReady = new Promise<void>((resolve, reject) => {
      probe.stderr!.on('data', () => /ready in/.test(probeErr) && resolve());
      probe.once('exit', () => reject(new Error(`vm run ended: ${probeErr}`)));
    });
    const fgPid = await foregroundQemu();
    await probeReady;
    const fgArgv = unconfined(await argvOf(fgPid));
    const fgDir = fgArgv.find((a) => a.includes('/fg-') && a.startsWith('/'))!.replace(/\/fg-([0-9a-f]+)\/.*$/, '/fg-$1');
    await copyFile(join(fgDir, 'config.img'), join(work, 'fg-config.img'));
    probe.kill('SIGINT');
    await new Promise((r) => probe.once('exit', r));
    const rawFgArgv = relocate(fgArgv, fgDir, work).map((a) => a.replace(`${work}/config.img`, `${work}/fg-config.img`));

    const t = { rawDaemon: [] as number[], daemon: [] as number[], plan: [] as number[], rawFg: [] as number[], fg: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      // raw, daemon command line
      await ns(`tuntap add dev ${tap} mode tap\nlink set dev ${tap} master ${d.bridge}\nlink set dev ${tap} up\n`);
      t.rawDaemon.push(await rawBoot(rawDaemonArgv, join(work, 'console.log')));
      await ns(`link del dev ${tap}\n`);
      await sleep(SETTLE_MS);
      // through the daemon
      const t0 = performance.now();
      const res = await fetch(`${d.url}/vm/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: 'hello', name: `b${i}`, boot: 'cold' }) });
      t.daemon.push(performance.now() - t0);
      const timing = res.headers.get('server-timing') ?? '';
      t.plan.push(Number(/plan;dur=([0-9.]+)/.exec(timing)?.[1] ?? NaN));
      if (res.status !== 201) throw new Error(`run answered ${res.status}: ${await res.text()}`);
      guestUigniter.push(guestReadyMs(await d.client.logs(`b${i}`)));
      await d.client.remove(`b${i}`, { force: true });
      await sleep(SETTLE_MS);
      // raw, vm run command line
      t.rawFg.push(await rawBoot(rawFgArgv, join(work, 'console.log')));
      guestRaw.pop(); // only the daemon pair is compared guest-side
      await sleep(SETTLE_MS);
      // through `uigniter vm run`
      const f0 = performance.now();
      const fg = spawn(process.execPath, [CLI, 'vm', 'run', 'hello'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      await new Promise<void>((resolve, reject) => {
        let err = '';
        fg.stderr!.on('data', (c: Buffer) => {
          err += c.toString();
          if (/ready in/.test(err)) resolve();
        });
        fg.once('exit', () => reject(new Error(`vm run exited: ${err}`)));
      });
      t.fg.push(performance.now() - f0);
      fg.kill('SIGINT');
      await new Promise((r) => fg.once('exit', r));
      await sleep(SETTLE_MS);
    }

    const s = (xs: number[]): string => `${(Math.min(...xs) / 1000).toFixed(3)} / ${(median(xs) / 1000).toFixed(3)} / ${(Math.max(...xs) / 1000).toFixed(3)}`;
    process.stdout.write(`\nbench/boot: boot to ready (hello app: Node.js HTTP server), ${RUNS} runs each, alternating; seconds as min / median / max\n\n`);
    printTable(
      ['path', 'raw qemu, unconfined', 'uigniter, confined', 'ratio of medians'],
      [
        ['daemon: POST /vm/run', s(t.rawDaemon), s(t.daemon), (median(t.daemon) / median(t.rawDaemon)).toFixed(3)],
        ['CLI: uigniter vm run', s(t.rawFg), s(t.fg), (median(t.fg) / median(t.rawFg)).toFixed(3)],
      ],
    );
    process.stdout.write(`\ndaemon work before QEMU starts (Server-Timing plan): median ${median(t.plan).toFixed(1)} ms\n`);
    process.stdout.write(`guest clock at ready (kernel start -> app ready), same command line: raw ${median(guestRaw).toFixed(0)} ms, via daemon ${median(guestUigniter).toFixed(0)} ms\n`);
    process.stdout.write(`QEMU RSS of an idle guest (hello app, ${tpl.memMiB} MiB guest): ${rss.toFixed(1)} MiB\n`);
    process.stdout.write(`goal: daemon ratio <= 1.05 -> ${median(t.daemon) / median(t.rawDaemon) <= 1.05 ? 'met' : 'NOT met'}\n`);
  } finally {
    await d.close();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
