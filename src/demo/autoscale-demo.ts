import type { UigniterClient } from '../client/client.js';
import { table } from '../cli/output.js';
import { BACKLOG_FIELD, backlogUrl, createWorkerService, removeWorkerService, runAutoscaledBatch, serviceEvents, WORKER_SERVICE, type AutoscaleRunResult } from './autoscale.js';
import { bootDemo, buildDemoImages, removeDemo } from './demo-app.js';
import { MasterClient } from './master-client.js';

export interface AutoscaleDemoOptions {
  client: UigniterClient;
  appsDir: string;
  workers: number;
  images: number;
  masterPort: number;
  leaseSec: number;
  pool: number;
  target: number;
  /** What a scale-down does with a worker: remove it, or (at zero) pause it for the next batch. */
  scaleDown: 'remove' | 'pause';
  keep: boolean;
  log: (l: string) => void;
}

/** What must hold after an autoscaled batch; an empty list when all is well. */
export function autoscaleProblems(r: AutoscaleRunResult, images: number): string[] {
  const problems = [...r.batch.mismatches.map((m) => `MISMATCH ${m}`)];
  const done = r.statsAfter.done - r.statsBefore.done;
  if (done !== images) problems.push(`the db counts ${done} tasks done for ${images} uploaded`);
  const byWorker = Object.values(r.batch.perWorker).reduce((a, b) => a + b, 0);
  if (byWorker !== images) problems.push(`the workers finished ${byWorker} tasks for ${images} uploaded`);
  if (r.statsAfter.total - r.statsBefore.total !== images) problems.push(`${r.statsAfter.total - r.statsBefore.total} tasks created for ${images} uploaded`);
  if (r.statsAfter.failed !== r.statsBefore.failed) problems.push(`${r.statsAfter.failed - r.statsBefore.failed} tasks failed`);
  if (r.peakReady < 1) problems.push('no worker ever became ready');
  if (r.backToZeroSec === null) problems.push('the workers did not go back to zero');
  return problems;
}

/** `uigniter demo --autoscale`: the workers as a service scaled by the db's backlog, 0 -> N -> 0. */
export async function runAutoscaleDemo(o: AutoscaleDemoOptions): Promise<boolean> {
  const { client, log } = o;
  const started = Date.now();
  log('building images (unchanged apps are not rebuilt)');
  await buildDemoImages({ client, appsDir: o.appsDir, log });
  await removeWorkerService(client);
  await removeDemo(client, { volumes: true });
  log('booting kvstore, db, storage and master as microVMs');
  const vms = await bootDemo({ client, appsDir: '', workers: 0, masterPort: o.masterPort, leaseSec: o.leaseSec, log });
  const db = vms.find((v) => v.name === 'db')!;
  await createWorkerService({ client, dbIp: db.ip!, maxWorkers: o.workers, leaseSec: o.leaseSec, target: o.target, poolSize: o.pool, scaleDown: o.scaleDown });
  log(
    `service ${WORKER_SERVICE}: 0..${o.workers} replicas, autoscaled on ${backlogUrl(db.ip!)} field ${BACKLOG_FIELD} (target ${o.target} pending tasks per worker)` +
      (o.pool ? `, pool of ${o.pool}` : '') +
      (o.scaleDown === 'pause' ? ', workers paused at zero and resumed by the next batch' : ''),
  );
  const master = new MasterClient(`http://127.0.0.1:${o.masterPort}`);
  log('');
  let r: AutoscaleRunResult;
  try {
    r = await runAutoscaledBatch({ client, master, dbIp: db.ip!, images: o.images, log });
  } catch (e) {
    if (!o.keep) await cleanup(o);
    throw e;
  }
  log('');
  log(
    table(
      ['tasks', 'verified', 'seconds', 'images/s', 'peak workers', 'last done -> 0 workers', ...Object.keys(r.batch.perWorker).sort()],
      [
        [
          r.batch.tasks,
          `${r.batch.tasks - r.batch.mismatches.length}/${r.batch.tasks}`,
          r.batch.seconds.toFixed(1),
          (r.batch.tasks / r.batch.seconds).toFixed(2),
          r.peakReady,
          r.backToZeroSec === null ? 'no' : `${r.backToZeroSec.toFixed(1)} s`,
          ...Object.keys(r.batch.perWorker).sort().map((w) => r.batch.perWorker[w]),
        ],
      ],
    ),
  );
  const decisions = r.points.filter((p) => p.decision);
  if (decisions.length > 0) {
    log('\nautoscaler decisions:');
    for (const p of decisions) log(`  ${new Date(p.t).toISOString().slice(11, 23)}  ${p.decision!.from} -> ${p.decision!.to}  ${p.decision!.reason}`);
  }
  const problems = autoscaleProblems(r, o.images);
  for (const p of problems) log(p);
  if (problems.length === 0) log(`\nevery task done exactly once, every pixel right; workers went 0 -> ${r.peakReady} -> 0`);
  if (o.scaleDown === 'pause') {
    const paused = (await client.raw<{ status: { paused: number } }>('GET', `/services/${WORKER_SERVICE}`)).status.paused;
    log(`${paused} worker(s) paused at zero: the next batch resumes them before it starts any`);
  }
  log(`\ntotal ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (o.keep) {
    log(
      `\nThe application keeps running; the workers start again when tasks arrive. Upload more:\n  curl -F image=@picture.png http://127.0.0.1:${o.masterPort}/task\n` +
        `Watch: uigniter ps; curl <daemon>/services/${WORKER_SERVICE}/events. Remove: DELETE /services/${WORKER_SERVICE}; uigniter rm -f kvstore db storage master`,
    );
  } else {
    await cleanup(o);
  }
  return problems.length === 0;
}

async function cleanup(o: AutoscaleDemoOptions): Promise<void> {
  await removeWorkerService(o.client);
  await removeDemo(o.client, { volumes: true });
  o.log(`removed the service ${WORKER_SERVICE}, the demo VMs and volumes`);
}

export { serviceEvents };
