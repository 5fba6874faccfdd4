/**
 * bench/ondemand: from a client's request to the app's first reply, seven ways, in one run,
 * rounds alternating (A B C D, B C D A, ...):
 *
 *   cold     POST /vm/run {image, boot:'cold', name}; once it answers (wait=ready), GET
 *            http://<vm ip>:8080/ polled every 5 ms -> first reply received
 *   pool     the same POST without boot (a warm pool of 2 for the image hands out a spare),
 *            then the same GET -> first reply received. Before each measurement: the pool
 *            has 2 ready spares again (GET /pools). The pool warms its spares the default
 *            way (10 requests of the image's readiness check, GET /healthz).
 *   pool+    the same with a pool primed with GET / (`warm: {path: '/'}`: each spare serves
 *            10 requests of / before its pause). A different env (PRIMED=1) keeps the two
 *            pools' spares apart.
 *   gateway  one GET <service gateway>/ sent to a service at 0 replicas (min 0, max 1,
 *            autoscale inflight, scaleToZeroAfterMs 1000, pool of 1) -> its reply received.
 *            Before each measurement: the service is at 0 (desired, running) and its pool full.
 *   gateway+ the same through a second service whose pool is primed with GET /.
 *   paused   the same through a third service with no pool and scaleDown 'pause': at 0 it
 *            holds 1 paused replica, which the request resumes. Before the rounds (untimed)
 *            one request makes that replica; before each measurement: desired and running
 *            0, 1 paused.
 *   host     spawn `node server.js` (a copy of the fixture with its port literal replaced by
 *            process.env.PORT, as bench/restore does) -> first reply of GET 127.0.0.1:<port>/
 *            polled every 5 ms.
 *
 * Same app for all of them: test/fixtures/counter. The VMs of `cold` and `pool` are deleted
 * after each measurement, untimed. Goals: pool p50 < 50 ms, gateway p50 < 100 ms, both below host.
 *
 *   node dist/bench/ondemand.js            (root; RUNS=20 by default)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PoolView, VmView } from '../src/client/client.js';
import { firstReply, getOnce, printTable, ROOT, spread, spreadRow, startBenchDaemon, waitTcpQuiet, type BenchDaemon } from './lib.js';
import { copyFixtureForHost, timeHostApp } from './host-app.js';

const RUNS = Number(process.env.RUNS ?? 20);
const IMAGE = 'counter';
const APP_PORT = 8080;
const SERVICE = 'ondemand';
const MEASURE_TIMEOUT_MS = 120_000;
const SETTLE_MS = 300;
const POOL_SIZE = 2;

type Path = 'cold' | 'pool' | 'pool+' | 'gateway' | 'gateway+' | 'paused' | 'host';
const PRIMED = { PRIMED: '1' };

const hostCopy = (dir: string): Promise<void> => copyFixtureForHost(IMAGE, APP_PORT, dir);
const hostPath = (appDir: string): Promise<number> => timeHostApp(appDir, MEASURE_TIMEOUT_MS, 5);

async function vmPath(d: BenchDaemon, name: string, cold: boolean, env: Record<string, string> = {}): Promise<{ ms: number; origin: string }> {
  const t0 = performance.now();
  const res = await fetch(`${d.url}/vm/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ image: IMAGE, name, env, ...(cold ? { boot: 'cold' } : {}) }),
    signal: AbortSignal.timeout(MEASURE_TIMEOUT_MS),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`POST /vm/run answered ${res.status}: ${text}`);
  const vm = JSON.parse(text) as VmView;
  try {
    const t = await firstReply(`http://${vm.ip}:${APP_PORT}/`, t0 + MEASURE_TIMEOUT_MS, { everyMs: 5 });
    return { ms: t - t0, origin: vm.origin };
  } finally {
    if (vm.ip) await waitTcpQuiet(vm.ip);
    await d.client.remove(name, { force: true }).catch(() => undefined);
  }
}

async function waitUntil(what: string, timeoutMs: number, f: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

interface ServiceState {
  status: { desired: number; ready: number; running: number; paused: number };
  gateway: string | null;
  pool: { id: string; size: number } | null;
}

async function main(): Promise<void> {
  if (RUNS < 1) throw new Error('RUNS must be at least 1');
  const d = await startBenchDaemon();
  const work = await mkdtemp(join(tmpdir(), 'uigniter-bench-ondemand-'));
  const poolIds: string[] = [];
  const servicesMade: string[] = [];
  try {
    await d.cli(['image', 'build', join(ROOT, 'test', 'fixtures', IMAGE), '--name', IMAGE]);
    const appDir = join(work, 'host-app');
    await hostCopy(appDir);

    const pools = async (): Promise<PoolView[]> => (await d.client.raw<{ pools: PoolView[] }>('GET', '/pools')).pools;
    const makePool = async (primed: boolean): Promise<() => Promise<boolean>> => {
      const pool = await d.client.raw<PoolView>('POST', '/pools', { image: IMAGE, size: POOL_SIZE, ...(primed ? { env: PRIMED, warm: { path: '/' } } : {}) });
      poolIds.push(pool.id);
      return async () => ((await pools()).find((p) => p.id === pool.id)?.ready.length ?? 0) >= POOL_SIZE;
    };
    const poolFull = { pool: await makePool(false), 'pool+': await makePool(true) };

    const makeService = async (name: string, primed: boolean, paused = false): Promise<{ gateway: string; idle: () => Promise<boolean> }> => {
      await d.client.raw('POST', '/services', {
        name,
        image: IMAGE,
        port: APP_PORT,
        replicas: { min: 0, max: 1 },
        autoscale: { metric: 'inflight', target: 1, scaleToZeroAfterMs: 1000, stableWindowMs: 2000, panicWindowMs: 1000, cooldownMs: 0 },
        ...(paused ? { scaleDown: 'pause' } : { pool: { size: 1, ...(primed ? { warm: { path: '/' } } : {}) } }),
        ...(primed ? { env: PRIMED } : {}),
      });
      servicesMade.push(name);
      const svc = async (): Promise<ServiceState> => d.client.raw<ServiceState>('GET', `/services/${name}`);
      const gateway = (await svc()).gateway;
      if (!gateway) throw new Error(`service ${name} has no gateway`);
      const idle = async (): Promise<boolean> => {
        const s = await svc();
        if (s.status.desired !== 0 || s.status.running !== 0) return false;
        if (paused) return s.status.paused === 1;
        const p = (await pools()).find((x) => x.id === s.pool?.id);
        return !!p && p.ready.length >= p.size;
      };
      return { gateway, idle };
    };
    const services = { gateway: await makeService(SERVICE, false), 'gateway+': await makeService(`${SERVICE}-primed`, true), paused: await makeService(`${SERVICE}-paused`, false, true) };
    // The paused path's replica: made by one request, untimed, then paused at zero.
    await getOnce(`${services.paused.gateway}/`, 60_000, MEASURE_TIMEOUT_MS);

    const reply: Record<Path, number[]> = { cold: [], pool: [], 'pool+': [], gateway: [], 'gateway+': [], paused: [], host: [] };
    const origins: Record<string, number> = {};
    const order: Path[] = ['cold', 'pool', 'pool+', 'gateway', 'gateway+', 'paused', 'host'];
    for (let i = 0; i < RUNS; i++) {
      const round = [...order.slice(i % order.length), ...order.slice(0, i % order.length)];
      for (const p of round) {
        if (p === 'host') reply.host.push(await hostPath(appDir));
        else if (p === 'cold') {
          const r = await vmPath(d, `od${i}-cold`, true);
          reply.cold.push(r.ms);
          origins[`cold->${r.origin}`] = (origins[`cold->${r.origin}`] ?? 0) + 1;
        } else if (p === 'pool' || p === 'pool+') {
          await waitUntil(`the ${p} pool to hold 2 ready spares`, 180_000, poolFull[p]);
          const r = await vmPath(d, `od${i}-${p === 'pool' ? 'pool' : 'primed'}`, false, p === 'pool' ? {} : PRIMED);
          reply[p].push(r.ms);
          origins[`${p}->${r.origin}`] = (origins[`${p}->${r.origin}`] ?? 0) + 1;
        } else {
          const s = services[p];
          await waitUntil(`the ${p} service to be at 0 with its pool full (paused: its replica paused)`, 180_000, s.idle);
          const t0 = performance.now();
          await getOnce(`${s.gateway}/`, 60_000, MEASURE_TIMEOUT_MS);
          reply[p].push(performance.now() - t0);
        }
        await sleep(SETTLE_MS);
      }
      const last = (p: Path): string => (reply[p].at(-1)! / 1000).toFixed(3);
      process.stderr.write(`round ${i + 1}/${RUNS}: ${order.map((p) => `${p} ${last(p)} s`).join(', ')}\n`);
    }

    for (const [p, name] of [['gateway', SERVICE], ['gateway+', `${SERVICE}-primed`], ['paused', `${SERVICE}-paused`]] as const) {
      const events = await d.client.raw<{ events: { kind: string; message: string }[] }>('GET', `/services/${name}/events`);
      const started = events.events.flatMap((e) => (e.kind === 'replica-started' ? [/\((\w+),/.exec(e.message)?.[1] ?? '?'] : e.kind === 'replica-resumed' ? ['resumed'] : []));
      for (const o of started) origins[`${p}->${o}`] = (origins[`${p}->${o}`] ?? 0) + 1;
    }

    process.stdout.write(`\nbench/ondemand: ${IMAGE} app (Node HTTP server), ${RUNS} alternating rounds; ms from the client's request to the app's first reply\n`);
    printTable(['path', 'n', 'min', 'p50', 'p99', 'max'], [
      spreadRow("cold: POST /vm/run {boot:'cold'} answered, then GET <ip>:8080/ -> first reply", reply.cold, 1, 1),
      spreadRow('pool: POST /vm/run (warm pool of 2) answered, then GET <ip>:8080/ -> first reply', reply.pool, 1, 1),
      spreadRow("pool+: the same, pool primed with warm: {path: '/'}", reply['pool+'], 1, 1),
      spreadRow('gateway: GET <gateway>/ to a service at 0 replicas (pool of 1) -> reply', reply.gateway, 1, 1),
      spreadRow("gateway+: the same, its pool primed with warm: {path: '/'}", reply['gateway+'], 1, 1),
      spreadRow("paused: the same to a service at 0 running, 1 paused replica (scaleDown 'pause', no pool) -> reply", reply.paused, 1, 1),
      spreadRow('host: spawn node server.js -> first reply of GET 127.0.0.1:<port>/', reply.host, 1, 1),
    ]);
    const p50 = (p: Path): number => spread(reply[p]).p50;
    process.stdout.write(`\nratios of p50 against host (baseline, same run): ${order.filter((p) => p !== 'host').map((p) => `${p} ${(p50(p) / p50('host')).toFixed(2)}x`).join(', ')}\n`);
    process.stdout.write(`origins: ${JSON.stringify(origins)}\n`);
    const goal = (label: string, ok: boolean): void => void process.stdout.write(`goal ${label}: ${ok ? 'met' : 'NOT met'}\n`);
    for (const [pool, gw] of [['pool', 'gateway'], ['pool+', 'gateway+']] as const) {
      goal(`${pool} p50 < 50 ms (${p50(pool).toFixed(1)} ms)`, p50(pool) < 50);
      goal(`${gw} p50 < 100 ms (${p50(gw).toFixed(1)} ms)`, p50(gw) < 100);
      goal(`${pool} and ${gw} p50 below host (${p50('host').toFixed(1)} ms)`, p50(pool) < p50('host') && p50(gw) < p50('host'));
    }
    goal(`paused p50 < 100 ms and below host (${p50('paused').toFixed(1)} ms)`, p50('paused') < 100 && p50('paused') < p50('host'));
  } finally {
    for (const name of servicesMade) await d.client.raw('DELETE', `/services/${name}`).catch(() => undefined);
    for (const id of poolIds) await d.client.raw('DELETE', `/pools/${id}`).catch(() => undefined);
    await d.close();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/ondemand failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
