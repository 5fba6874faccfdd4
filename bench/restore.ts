/**
 * bench/restore: time to an app's first HTTP reply, three ways, in one run, interleaved:
 *
 *   cold      POST /vm/run {image, boot:'cold'}      -> first reply of GET http://<vm ip>:8080/
 *   template  POST /vm/run {image, boot:'template'}  -> first reply of GET http://<vm ip>:8080/
 *   host      spawn `node server.js` on the host     -> first reply of GET http://127.0.0.1:<port>/
 * and a fourth, to tell the network's part from the guest's:
 *   template, after answer: the same restore, but the first GET is sent only once the POST
 *             has answered (wait=ready), as a client that waits for the API would do.
 *
 * Same app for all three: test/fixtures/counter. Its server.js hard-codes port 8080, so the
 * host path runs a copy of it in a temp dir whose only change is that literal, replaced by
 * process.env.PORT (a free loopback port); the fixture itself is not touched. The host runs
 * it with this Node (process.execPath); the guest with the image's own runtime.
 *
 * Each time runs from just before the request (or the spawn) to the first reply's body
 * received: the VM's address is read from GET /vm/<name> (polled every 5 ms while the
 * POST is in flight; the lease is the first step of a boot), then the app's port is polled
 * every 5 ms (each attempt gives up its connection after 200 ms). The POST uses the client's
 * default (wait=ready); its own answer time and Server-Timing are recorded beside. Each VM
 * is deleted after its measurement, untimed, once the host has no TCP connection to it that
 * could still send (a FIN retransmitted to a deleted VM's address would start an ARP
 * resolution that the next VM, which gets the same address, would then wait for).
 * Rounds rotate the order of the paths.
 *
 *   node dist/bench/restore.js            (root; RUNS=20 by default, at least 20 is the rule)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SnapshotView, VmView } from '../src/client/client.js';
import { firstReply, median, newTrace, printTable, ROOT, serverTimingMs, smapsRollupMiB, spread, spreadRow, startBenchDaemon, removeDaemonMemoryDir, waitTcpQuiet, type BenchDaemon, type ReplyTrace } from './lib.js';
import { copyFixtureForHost, timeHostApp } from './host-app.js';

const RUNS = Number(process.env.RUNS ?? 20);
const IMAGE = 'counter';
const APP_PORT = 8080;
const POLL_MS = 5;
/** A bound on one measurement (a cold boot under TCG on a busy machine takes seconds). */
const MEASURE_TIMEOUT_MS = 120_000;
/** Pause after each deletion: a QEMU that just ended still frees its memory for a moment. */
const SETTLE_MS = 300;
const GOAL_S = 0.5;

type Path = 'cold' | 'template' | 'afterAnswer' | 'host';

interface VmSample {
  replyMs: number;
  answerMs: number;
  /** From the request to the TCP connect of the GET that answered. */
  connectMs: number;
  timing: string;
  vm: VmView;
  trace: ReplyTrace;
}

/** The VM's address from GET /vm/<name>, polled while its POST is in flight. */
async function ipOf(d: BenchDaemon, name: string, deadline: number, posted: { done: boolean }): Promise<string> {
  while (performance.now() < deadline && !posted.done) {
    const res = await fetch(`${d.url}/vm/${name}`);
    if (res.ok) {
      const vm = (await res.json()) as VmView;
      if (vm.ip) return vm.ip;
    } else {
      await res.body?.cancel();
    }
    await sleep(POLL_MS);
  }
  // The POST ended first (or failed): its answer has the address if the VM exists.
  const res = await fetch(`${d.url}/vm/${name}`);
  if (!res.ok) throw new Error(`VM ${name} has no address (GET answered ${res.status})`);
  const vm = (await res.json()) as VmView;
  if (!vm.ip) throw new Error(`VM ${name} has no address`);
  return vm.ip;
}

/** POST /vm/run for one VM, timed to the app's first reply (and to the POST's answer). */
async function vmPath(d: BenchDaemon, name: string, boot: 'cold' | 'template', pollFrom: 'request' | 'answer'): Promise<VmSample> {
  const body = JSON.stringify({ image: IMAGE, boot, name });
  const posted = { done: false };
  const t0 = performance.now();
  const deadline = t0 + MEASURE_TIMEOUT_MS;
  const post = fetch(`${d.url}/vm/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(MEASURE_TIMEOUT_MS) }).then(
    async (res) => {
      const answerMs = performance.now() - t0;
      posted.done = true;
      const text = await res.text();
      if (res.status !== 201) throw new Error(`POST /vm/run {boot:'${boot}'} answered ${res.status}: ${text}`);
      return { answerMs, timing: res.headers.get('server-timing') ?? '', vm: JSON.parse(text) as VmView };
    },
    (e: unknown) => {
      posted.done = true;
      throw e;
    },
  );
  // If the POST fails, stop polling the app at once.
  const failed = new AbortController();
  post.catch((e: unknown) => failed.abort(e));
  const trace = newTrace();
  try {
    const ip = pollFrom === 'request' ? await ipOf(d, name, deadline, posted) : (await post).vm.ip!;
    const tReply = await firstReply(`http://${ip}:${APP_PORT}/`, deadline, { everyMs: POLL_MS, signal: failed.signal, trace });
    const answered = await post;
    return { replyMs: tReply - t0, connectMs: trace.connectedAt! - t0, trace, ...answered };
  } catch (e) {
    // The POST's own error says more than the poller's.
    await post;
    throw e;
  }
}

const hostPath = (appDir: string): Promise<number> => timeHostApp(appDir, MEASURE_TIMEOUT_MS, POLL_MS);
const hostCopy = (dir: string): Promise<void> => copyFixtureForHost(IMAGE, APP_PORT, dir);

async function templateOf(d: BenchDaemon): Promise<SnapshotView | undefined> {
  return (await d.client.templates()).find((t) => t.image === IMAGE || t.image.startsWith(`${IMAGE}:`));
}

/** Makes sure the template exists: one boot:'auto' VM, wait for GET /templates to list it, delete the VM. */
async function ensureTemplate(d: BenchDaemon): Promise<SnapshotView> {
  const have = await templateOf(d);
  if (have) return have;
  const t0 = performance.now();
  await d.client.run({ image: IMAGE, boot: 'auto', name: 'template-source' });
  const ready = performance.now();
  try {
    for (let i = 0; i < 1200; i++) {
      const t = await templateOf(d);
      if (t) {
        process.stdout.write(`template ${t.name}: boot:'auto' VM ready in ${((ready - t0) / 1000).toFixed(3)} s, listed ${((performance.now() - ready) / 1000).toFixed(3)} s after\n`);
        return t;
      }
      await sleep(100);
    }
    throw new Error('no template was listed within 120 s of the boot:auto VM being ready (see the daemon log above)');
  } finally {
    await d.client.remove('template-source', { force: true });
  }
}

const s3 = (ms: number): string => (ms / 1000).toFixed(3);

/** Rss/Pss of QEMU for one cold and one restored VM (and the restored one once a second clone runs). */
async function memoryReport(d: BenchDaemon): Promise<void> {
  const keys = ['Rss', 'Pss', 'Pss_Anon', 'Pss_File', 'Pss_Shmem'];
  const row = (label: string, m: Record<string, number>): string[] => [label, ...keys.map((k) => (m[k] ?? NaN).toFixed(1))];
  const names: string[] = [];
  try {
    const run = async (name: string, boot: 'cold' | 'template'): Promise<VmView> => {
      names.push(name);
      const vm = await d.client.run({ image: IMAGE, boot, name });
      if (vm.ip) await firstReply(`http://${vm.ip}:${APP_PORT}/`, performance.now() + 30_000);
      return vm;
    };
    const cold = await run('mem-cold', 'cold');
    const r1 = await run('mem-restored-1', 'template');
    await sleep(2000);
    const rows = [row(`cold (pid ${cold.pid})`, await smapsRollupMiB(cold.pid!)), row(`restored (pid ${r1.pid})`, await smapsRollupMiB(r1.pid!))];
    await run('mem-restored-2', 'template');
    await sleep(2000);
    rows.push(row(`restored, with a 2nd clone up`, await smapsRollupMiB(r1.pid!)));
    process.stdout.write(`\nQEMU memory, /proc/<pid>/smaps_rollup, 2 s after each VM's first reply (MiB; guest RAM ${cold.memMiB} MiB)\n\n`);
    printTable(['VM', ...keys], rows);
  } finally {
    for (const n of names) await d.client.remove(n, { force: true }).catch(() => undefined);
  }
}

async function main(): Promise<void> {
  if (RUNS < 1) throw new Error('RUNS must be at least 1');
  const d = await startBenchDaemon();
  const work = await mkdtemp(join(tmpdir(), 'uigniter-bench-restore-'));
  try {
    await d.cli(['image', 'build', join(ROOT, 'test', 'fixtures', IMAGE), '--name', IMAGE]);
    const appDir = join(work, 'host-app');
    await hostCopy(appDir);
    const image = (await d.client.images()).find((i) => i.name === IMAGE)!;
    const tpl = await ensureTemplate(d);

    const reply: Record<Path, number[]> = { cold: [], template: [], afterAnswer: [], host: [] };
    const vmRuns: Record<'cold' | 'template' | 'afterAnswer', VmSample[]> = { cold: [], template: [], afterAnswer: [] };
    const origins = new Set<string>();
    let lingering = 0;
    const order: Path[] = ['cold', 'template', 'host', 'afterAnswer'];
    for (let i = 0; i < RUNS; i++) {
      const round = [...order.slice(i % order.length), ...order.slice(0, i % order.length)];
      for (const p of round) {
        if (p === 'host') {
          reply.host.push(await hostPath(appDir));
        } else {
          const name = `r${i}-${p === 'afterAnswer' ? 'tpl-after' : p}`;
          let s: VmSample | undefined;
          try {
            s = await vmPath(d, name, p === 'cold' ? 'cold' : 'template', p === 'afterAnswer' ? 'answer' : 'request');
          } finally {
            if (s?.vm.ip) lingering += await waitTcpQuiet(s.vm.ip);
            await d.client.remove(name, { force: true }).catch(() => undefined);
          }
          reply[p].push(s.replyMs);
          vmRuns[p].push(s);
          origins.add(`${p}->${s.vm.origin}`);
        }
        await sleep(SETTLE_MS);
      }
      process.stderr.write(`round ${i + 1}/${RUNS}: cold ${s3(reply.cold.at(-1)!)} s, template ${s3(reply.template.at(-1)!)} s, template after answer ${s3(reply.afterAnswer.at(-1)!)} s, host ${s3(reply.host.at(-1)!)} s\n`);
    }

    const answers = (p: keyof typeof vmRuns): number[] => vmRuns[p].map((v) => v.answerMs);
    process.stdout.write(`\nbench/restore: ${IMAGE} app (Node HTTP server), ${RUNS} interleaved rounds; seconds\n`);
    process.stdout.write(`time = client side, from just before POST /vm/run (or the spawn) to the body of the first GET / that answered\n`);
    process.stdout.write(`(VMs: guest ${image.runtime}, ${image.memMiB} MiB, 1 of 2 cores; host: ${process.execPath} ${process.version} running a copy of server.js whose port literal 8080 is replaced by $PORT)\n\n`);
    printTable(
      ['path', 'n', 'min', 'p50', 'p99', 'max'],
      [
        spreadRow("cold: POST {boot:'cold'} -> first reply (GET polled from the request on)", reply.cold, 1000),
        spreadRow("template: POST {boot:'template'} -> first reply (GET polled from the request on)", reply.template, 1000),
        spreadRow('host: spawn node server.js -> first reply', reply.host, 1000),
        spreadRow("template, first GET after the POST's answer: POST -> first reply", reply.afterAnswer, 1000),
        spreadRow('  cold: POST -> its answer (wait=ready)', answers('cold'), 1000),
        spreadRow('  template: POST -> its answer (wait=ready)', answers('template'), 1000),
        spreadRow('  template: its answer -> TCP connect of the GET that answered', vmRuns.template.map((v) => v.connectMs - v.answerMs), 1000),
        spreadRow('  template: that TCP connect -> reply body', vmRuns.template.map((v) => v.replyMs - v.connectMs), 1000),
        spreadRow('  template, after answer: POST -> its answer', answers('afterAnswer'), 1000),
        spreadRow('  template, after answer: answer -> TCP connect of the GET that answered', vmRuns.afterAnswer.map((v) => v.connectMs - v.answerMs), 1000),
        spreadRow('  template, after answer: that TCP connect -> reply body', vmRuns.afterAnswer.map((v) => v.replyMs - v.connectMs), 1000),
        spreadRow('  cold: TCP connect of the GET that answered -> reply body', vmRuns.cold.map((v) => v.replyMs - v.connectMs), 1000),
      ],
    );
    const p50 = (xs: number[]): number => median(xs);
    const ratio = p50(reply.template) / p50(reply.cold);
    process.stdout.write(`\nratios of p50 (first reply): restore/cold ${ratio.toFixed(3)} (${(1 / ratio).toFixed(1)}x faster), restore/host ${(p50(reply.template) / p50(reply.host)).toFixed(3)}\n`);
    process.stdout.write(`  first GET after the answer: restore/cold ${(p50(reply.afterAnswer) / p50(reply.cold)).toFixed(3)}, restore/host ${(p50(reply.afterAnswer) / p50(reply.host)).toFixed(3)}\n`);
    process.stdout.write(`goal: restore p50 < ${GOAL_S} s here -> ${p50(reply.template) / 1000 < GOAL_S ? 'met' : 'NOT met'} (${s3(p50(reply.template))} s; first GET after the answer: ${s3(p50(reply.afterAnswer))} s)\n`);
    const stalls = (p: 'template' | 'afterAnswer'): number => vmRuns[p].filter((v) => v.connectMs - v.answerMs > 500).length;
    process.stdout.write(`runs whose TCP connect came > 0.5 s after the POST's answer: template ${stalls('template')}/${RUNS}, template after answer ${stalls('afterAnswer')}/${RUNS}\n`);
    const errs = (p: keyof typeof vmRuns): string => {
      const all: Record<string, number> = {};
      for (const v of vmRuns[p]) for (const [k, n] of Object.entries(v.trace.errors)) all[k] = (all[k] ?? 0) + n;
      return Object.entries(all).map(([k, n]) => `${k} x${n}`).join(', ') || 'none';
    };
    process.stdout.write(`failed GET attempts before the first reply: cold ${errs('cold')}; template ${errs('template')}; template after answer ${errs('afterAnswer')}\n`);
    process.stdout.write(`VM origins seen: ${[...origins].join(', ')}${lingering ? `; ${lingering} host TCP connections still sending to a VM 2 s after its reply` : ''}\n`);

    process.stdout.write(`\nServer-Timing of POST /vm/run (ms; plan = daemon work before the VMM starts, vmm = VMM start-up/load, guest = VMM up to ready)\n\n`);
    const tRows: (string | number)[][] = [];
    for (const p of ['template', 'afterAnswer', 'cold'] as const) {
      for (const k of ['plan', 'vmm', 'guest'] as const) {
        const xs = vmRuns[p].map((v) => serverTimingMs(v.timing, k));
        const label = `${p === 'afterAnswer' ? 'template (after answer)' : p} ${k}`;
        tRows.push(spread(xs).n > 0 ? spreadRow(label, xs, 1, 1) : [label, 0, '-', '-', '-', '-']);
      }
    }
    printTable(['part', 'n', 'min', 'p50', 'p99', 'max'], tRows);

    const t = (await templateOf(d)) ?? tpl;
    process.stdout.write(`\ntemplate ${t.name}: ${(t.sizeBytes / 1024 ** 2).toFixed(1)} MiB on disk (GET /templates sizeBytes = ${t.sizeBytes}), memory ${t.memory}, app quiesced ${String(t.appQuiesced)}\n`);
    await memoryReport(d);
  } finally {
    await d.close();
    const left = await removeDaemonMemoryDir(d.home);
    if (left.length > 0) process.stderr.write(`the daemon left guest RAM files behind: ${left.join(', ')}\n`);
    await rm(work, { recursive: true, force: true });
  }
}

await main();
