/**
 * bench/pipeline: images per second of the demo application with 1, 2 and 4 workers, as
 * microVMs under uigniter and as plain processes on this host, in the same run.
 *
 *   node dist/bench/pipeline.js       (root; IMAGES=24 SIZE=64 by default)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNativeCluster } from '@uigniter-demo/native';
import type { RunBody } from '../src/client/client.js';
import { bootDemo, buildDemoImages, processBatch, workerName } from '../src/demo/demo-app.js';
import { MasterClient } from '../src/demo/master-client.js';
import { freePort, printTable, ROOT, startBenchDaemon } from './lib.js';

const IMAGES = Number(process.env.IMAGES ?? 24);
const SIZE = Number(process.env.SIZE ?? 64);
const WORKERS = [1, 2, 4];
const quiet = (): void => undefined;

async function measure(master: MasterClient, seed: number): Promise<number> {
  await processBatch(master, 2, { log: quiet, seed: seed + 5000, size: SIZE }); // warm-up: first requests pay for JIT
  const r = await processBatch(master, IMAGES, { log: quiet, seed, size: SIZE });
  if (r.mismatches.length) throw new Error(`wrong results: ${r.mismatches.join('; ')}`);
  return r.tasks / r.seconds;
}

async function main(): Promise<void> {
  const native: number[] = [];
  for (const k of WORKERS) {
    const dataDir = await mkdtemp(join(tmpdir(), 'uigniter-bench-native-'));
    const cluster = await startNativeCluster({ dataDir, workers: k, leaseSec: 30 });
    try {
      native.push(await measure(new MasterClient(cluster.urls.master!), 1000 * k));
    } finally {
      await cluster.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
    process.stderr.write(`native, ${k} worker(s): ${native.at(-1)!.toFixed(2)} images/s\n`);
  }

  const d = await startBenchDaemon();
  const vm: number[] = [];
  try {
    await buildDemoImages({ client: d.client, appsDir: join(ROOT, 'apps'), log: quiet });
    const port = await freePort();
    await bootDemo({ client: d.client, appsDir: '', workers: 1, masterPort: port, leaseSec: 30, log: quiet });
    const master = new MasterClient(`http://127.0.0.1:${port}`);
    let running = 1;
    for (const k of WORKERS) {
      const more: RunBody[] = [];
      for (; running < k; running++) more.push({ image: 'worker', name: workerName(running + 1), env: { LEASE_SEC: '30' } });
      await Promise.all(more.map((b) => d.client.run(b)));
      vm.push(await measure(master, 1000 * k));
      process.stderr.write(`microVMs, ${k} worker(s): ${vm.at(-1)!.toFixed(2)} images/s\n`);
    }
  } finally {
    await d.close();
  }

  process.stdout.write(`\nbench/pipeline: ${IMAGES} images of ${SIZE}x${SIZE} per run (upload, filter, store, all results checked)\n\n`);
  printTable(
    ['workers', 'native (images/s)', 'microVMs (images/s)', 'microVMs / native'],
    WORKERS.map((k, i) => [k, native[i]!.toFixed(2), vm[i]!.toFixed(2), (vm[i]! / native[i]!).toFixed(3)]),
  );
}

await main();
