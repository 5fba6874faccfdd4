import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import type { UigniterClient } from '../../client/client.js';
import { invalid } from '../../core/errors.js';
import { packageRoot } from '../../util/package-root.js';
import { resolveHome } from '../../util/paths.js';
import { processAlive } from '../../util/process.js';
import { table } from '../output.js';

/** The industrial example's scenarios (apps/ics-scenarios), named in the help without loading it. */
const SCENARIO_LIST = 'normal, setpoint-step, controller-failover, alarm, broker-restart, bad-messages';

const int = (v: string): number => Number(v);

/** Asks the daemon how it is; says where its dashboard is. */
async function announce(client: UigniterClient, log: (l: string) => void): Promise<void> {
  const h = await client.health();
  if (h.ui) log(`dashboard: ${h.ui}`);
}

/** Starts `uigniter daemon` in the background when none answers; returns its pid or null. */
async function ensureDaemon(client: UigniterClient, home: string, log: (l: string) => void): Promise<number | null> {
  const { ApiError, DEFAULT_HOST } = await import('../../client/client.js');
  try {
    await announce(client, log);
    return null;
  } catch (e) {
    if (!(e instanceof ApiError) || e.code !== 'unavailable') throw e;
    if (process.env.UIGNITER_HOST && process.env.UIGNITER_HOST !== DEFAULT_HOST) throw e;
  }
  await mkdir(home, { recursive: true });
  const logFile = join(home, 'daemon.log');
  const out = openSync(logFile, 'a');
  // --stop-vms-on-exit: when the demo stops this daemon, it takes its VMs and network down.
  const child = spawn(process.execPath, [join(packageRoot(), 'dist', 'src', 'cli', 'main.js'), '--home', home, 'daemon', '--stop-vms-on-exit'], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  child.unref();
  log(`started uigniter daemon (pid ${child.pid}, log ${logFile})`);
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`the daemon exited at start; see ${logFile}`);
    try {
      await announce(client, log);
      return child.pid ?? null;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`the daemon did not answer within 30 s; see ${logFile}`);
}

export function registerDemo(program: Command): void {
  const demo = program
    .command('demo')
    .description("run the modular image-processing application as microVMs, process a batch of PNGs and verify every result ('demo industrial': the industrial control example)")
    .option('-w, --workers <n>', 'worker VMs (with --autoscale: the most workers; default 2, or 3 with --autoscale)', int)
    .option('-n, --images <n>', 'images to process', int, 12)
    .option('--port <port>', 'host port (127.0.0.1) published to the master', int, 9003)
    .option('--lease-sec <s>', 'task lease: how soon a dead worker\'s task is taken over', int, 10)
    .option('--keep', 'leave the application running and print how to upload more')
    .option('--autoscale', "run the workers as a service 'worker' (min 0, max --workers) scaled on the db's backlog")
    .option('--pool <n>', 'with --autoscale: pre-booted workers kept aside', int, 0)
    .option('--target <n>', 'with --autoscale: pending tasks (waiting or being worked on) per worker', Number, 2)
    .option('--scale-down <what>', "with --autoscale: 'remove' workers (default), or 'pause' them at zero for the next batch to resume", 'remove')
    .action(async (o: { workers?: number; images: number; port: number; leaseSec: number; keep?: boolean; autoscale?: boolean; pool: number; target: number; scaleDown: string }) => {
      if (o.autoscale) {
        if (o.scaleDown !== 'remove' && o.scaleDown !== 'pause') throw invalid('scaleDown', `--scale-down '${o.scaleDown}' must be remove or pause`);
        const { runAutoscaleDemo } = await import('../../demo/autoscale-demo.js');
        const home = resolveHome(program.opts<{ home?: string }>().home);
        const log = (l: string): void => void process.stdout.write(`${l}\n`);
        const { UigniterClient } = await import('../../client/client.js');
        const client = new UigniterClient();
        const daemonPid = await ensureDaemon(client, home, log);
        const ok = await runAutoscaleDemo({
          client,
          appsDir: join(packageRoot(), 'apps'),
          workers: o.workers ?? 3,
          images: o.images,
          masterPort: o.port,
          leaseSec: o.leaseSec,
          pool: o.pool,
          target: o.target,
          scaleDown: o.scaleDown,
          keep: o.keep ?? false,
          log,
        });
        if (!o.keep && daemonPid) {
          process.kill(daemonPid, 'SIGTERM');
          for (let i = 0; i < 300 && processAlive(daemonPid); i++) await sleep(100);
          log('stopped the daemon the demo started (its network namespace is gone with it)');
        }
        if (!ok) process.exitCode = 1;
        return;
      }
      const workers = o.workers ?? 2;
      const { UigniterClient } = await import('../../client/client.js');
      const { bootDemo, buildDemoImages, processBatch, removeDemo } = await import('../../demo/demo-app.js');
      const { MasterClient } = await import('../../demo/master-client.js');
      const log = (l: string): void => void process.stdout.write(`${l}\n`);
      const home = resolveHome(program.opts<{ home?: string }>().home);
      const client = new UigniterClient();
      const daemonPid = await ensureDaemon(client, home, log);
      const started = Date.now();
      log('building images (unchanged apps are not rebuilt)');
      await buildDemoImages({ client, appsDir: join(packageRoot(), 'apps'), log });
      await removeDemo(client, { volumes: true });
      log(`booting kvstore, db, storage, master and ${workers} worker(s) as microVMs`);
      const vms = await bootDemo({ client, appsDir: '', workers, masterPort: o.port, leaseSec: o.leaseSec, log });
      const kv = vms.find((v) => v.name === 'kvstore')!;
      log(`\nregistry (GET http://${kv.ip}:9000/):`);
      for (const line of (await (await fetch(`http://${kv.ip}:9000/`)).text()).trim().split('\n')) log(`  ${line}`);
      const master = new MasterClient(`http://127.0.0.1:${o.port}`);
      log('');
      const r = await processBatch(master, o.images, { log });
      log('');
      log(
        table(
          ['tasks', 'verified', 'seconds', 'images/s', ...Object.keys(r.perWorker).sort()],
          [[r.tasks, `${r.tasks - r.mismatches.length}/${r.tasks}`, r.seconds.toFixed(1), (r.tasks / r.seconds).toFixed(2), ...Object.keys(r.perWorker).sort().map((w) => r.perWorker[w])]],
        ),
      );
      for (const m of r.mismatches) log(`MISMATCH ${m}`);
      log(`\ntotal ${((Date.now() - started) / 1000).toFixed(1)} s`);
      if (o.keep) {
        log(`\nThe application keeps running. Upload more:\n  curl -F image=@picture.png http://127.0.0.1:${o.port}/task\n  curl -o out.png http://127.0.0.1:${o.port}/task/<id>/result\nSee it: uigniter ps; uigniter logs worker-1. Remove it: uigniter rm -f kvstore db storage master ${vms.filter((v) => v.name.startsWith('worker-')).map((v) => v.name).join(' ')}`);
      } else {
        await removeDemo(client, { volumes: true });
        log('removed the demo VMs and volumes');
        if (daemonPid) {
          process.kill(daemonPid, 'SIGTERM');
          for (let i = 0; i < 300 && processAlive(daemonPid); i++) await sleep(100);
          log('stopped the daemon the demo started (its network namespace is gone with it)');
        }
      }
      if (r.mismatches.length > 0) process.exitCode = 1;
    });

  demo
    .command('industrial')
    .description('run the industrial control example (plant on Modbus TCP, MQTT broker, I/O gateway, two controllers, historian, alarm handler started on demand) and its scenarios, and print a report')
    .option('--scenario <name...>', `scenarios to run: ${SCENARIO_LIST} (default: all)`)
    .option('--duration <s>', 'seconds the normal scenario watches the plant (default 6, times the time factor)', Number)
    .option('--time-factor <n>', 'stretch every scenario duration and deadline (default 3 on microVMs, 1 natively)', Number)
    .option('--native', 'run the services as host processes instead of microVMs (for comparison)')
    .option('--json', 'print the report as JSON: one object {scenario, loopLatencyMs, deadlineMisses, alarms, failoverMs, withinLimits, ...}, an array of them for several scenarios')
    .option('--keep', 'leave the example running after the scenarios')
    .action(async (o: { scenario?: string[]; duration?: number; timeFactor?: number; native?: boolean; json?: boolean; keep?: boolean }) => {
      // `demo` has its own --keep, which commander gives the parent when both have one.
      const keep = o.keep ?? demo.opts<{ keep?: boolean }>().keep ?? false;
      const { runIndustrial, reportTable, isScenario, SCENARIOS } = await import('../../demo/industrial/industrial-demo.js');
      const scenarios = o.scenario ?? [...SCENARIOS];
      const bad = scenarios.filter((s) => !isScenario(s));
      if (bad.length > 0) {
        process.stderr.write(`uigniter: unknown scenario ${bad.join(', ')}; known: ${SCENARIOS.join(', ')}\n`);
        process.exitCode = 2;
        return;
      }
      if (o.duration !== undefined && (!Number.isFinite(o.duration) || o.duration <= 0)) {
        process.stderr.write('uigniter: --duration must be a positive number of seconds\n');
        process.exitCode = 2;
        return;
      }
      // Progress goes to stderr with --json, so stdout is the report alone.
      const log = (l: string): void => void (o.json ? process.stderr : process.stdout).write(`${l}\n`);
      let client: UigniterClient | undefined;
      let daemonPid: number | null = null;
      if (!o.native) {
        const { UigniterClient } = await import('../../client/client.js');
        client = new UigniterClient();
        daemonPid = await ensureDaemon(client, resolveHome(program.opts<{ home?: string }>().home), log);
      }
      try {
        const run = await runIndustrial({
          scenarios: scenarios.filter(isScenario),
          mode: o.native ? 'native' : 'vm',
          appsDir: join(packageRoot(), 'apps'),
          log,
          keep,
          ...(client ? { client } : {}),
          ...(o.timeFactor !== undefined ? { timeFactor: o.timeFactor } : {}),
          ...(o.duration !== undefined ? { normalMs: o.duration * 1000 } : {}),
        });
        if (o.json) process.stdout.write(`${JSON.stringify(run.reports.length === 1 ? run.reports[0] : run.reports)}\n`);
        else {
          const t = reportTable(run.reports);
          log('');
          log(table(t.header, t.rows));
          for (const r of run.reports) for (const f of r.failures) log(`${r.scenario}: ${f}`);
        }
        if (run.reports.some((r) => !r.passed)) process.exitCode = 1;
      } finally {
        if (!keep && daemonPid) {
          process.kill(daemonPid, 'SIGTERM');
          for (let i = 0; i < 300 && processAlive(daemonPid); i++) await sleep(100);
          log('stopped the daemon the demo started (its network namespace is gone with it)');
        }
      }
    });
}
