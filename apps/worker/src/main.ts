import { hostname } from 'node:os';
import { envNumber, envString, serviceConfig } from '@uigniter-demo/common/config';
import { sendJson } from '@uigniter-demo/common/http-io';
import { closeServer, listen } from '@uigniter-demo/common/http-server';
import { log } from '@uigniter-demo/common/log';
import { endpointKey, RegistryClient } from '@uigniter-demo/common/registry-client';
import { Router } from '@uigniter-demo/common/router';
import { ServiceEndpoint } from '@uigniter-demo/common/service-endpoint';
import { onShutdown } from '@uigniter-demo/common/shutdown';
import { StorageClient } from '@uigniter-demo/common/storage-client';
import { TaskClient } from '@uigniter-demo/common/task-client';
import { TaskProcessor } from './task-processor.js';
import { WorkerLoop } from './worker-loop.js';

const config = serviceConfig(9004);
// Read at every use, not once: a clone of a worker takes its own hostname after the restore.
const currentId = (): string => envString('WORKER_ID', hostname());
const workerId = currentId();
if (!/^[A-Za-z0-9._:-]{1,128}$/.test(workerId)) throw new Error(`WORKER_ID "${workerId}" has unsupported characters`);
// Must match the db's LEASE_SEC: heartbeats go out three times per lease.
const leaseSec = envNumber('LEASE_SEC', 30, 0.1, 24 * 3600);
const pollMs = envNumber('POLL_MS', 200, 1);
const delayMs = envNumber('WORKER_DELAY_MS', 0);
const shutdownGraceMs = 5000;

const registry = new RegistryClient(config.kvstore);
const tasks = new TaskClient(new ServiceEndpoint(registry, 'db'));
const processor = new TaskProcessor({
  tasks,
  storage: new StorageClient(new ServiceEndpoint(registry, 'storage')),
  heartbeatMs: Math.max(50, Math.round((leaseSec * 1000) / 3)),
  stepDeadlineMs: Math.max(60_000, leaseSec * 2000),
  delayMs,
});
// A uigniter pool's spare is named pool-<pool>-<n> until a create takes it and renames it.
const isSpare = (): boolean => /^pool-[0-9a-f]+-[0-9a-f]+$/.test(currentId());
const loop = new WorkerLoop(currentId, tasks, processor, pollMs, isSpare);

const router = new Router()
  .get('/healthz', ({ res }) => sendJson(res, 200, { status: 'ok' }))
  .get('/stats', ({ res }) => sendJson(res, 200, loop.stats()));
const server = await listen(router, config.port, config.host);
log(`worker ${workerId} listening on ${config.host}:${config.port}, lease ${leaseSec}s, poll ${pollMs} ms${delayMs > 0 ? `, test delay ${delayMs} ms` : ''}`);
// "worker-1" registers as worker-1endpoint, "w1" as worker-w1endpoint: one "worker-" prefix.
// Both asked at every heartbeat: a clone registers under its own name and address.
const registryName = (): string => {
  const id = currentId();
  return id.startsWith('worker') ? id : `worker-${id}`;
};
const advertise = (): string => envString('ADVERTISE', `${hostname()}:${config.port}`);
const registration = registry.register(() => endpointKey(registryName()), advertise, config.registryTtlSec);
loop.start();

onShutdown(async () => {
  await loop.stop(shutdownGraceMs);
  await registration.stop();
  await closeServer(server);
}, shutdownGraceMs + 10_000);
