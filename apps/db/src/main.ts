import { join } from 'node:path';
import { envNumber, envString, serviceConfig } from '@uigniter-demo/common/config';
import { closeServer, listen } from '@uigniter-demo/common/http-server';
import { log } from '@uigniter-demo/common/log';
import { endpointKey, RegistryClient } from '@uigniter-demo/common/registry-client';
import { onShutdown } from '@uigniter-demo/common/shutdown';
import { dbRouter } from './routes.js';
import { openTaskDatabase } from './schema.js';
import { TaskRepository } from './task-repository.js';

const config = serviceConfig(9001);
const dataDir = envString('DATA_DIR', './data');
const leaseSec = envNumber('LEASE_SEC', 30, 0.1, 24 * 3600);
const maxAttempts = envNumber('MAX_ATTEMPTS', 5, 1, 1000);

const file = join(dataDir, 'tasks.sqlite');
const database = openTaskDatabase(file);
const tasks = new TaskRepository(database, { leaseMs: Math.round(leaseSec * 1000), maxAttempts });
const stats = tasks.stats();
log(`db opened ${file}: ${stats.total} tasks (${stats.ready} ready, ${stats.leased} leased, ${stats.done} done, ${stats.failed} failed)`);

const server = await listen(dbRouter(tasks), config.port, config.host);
log(`db listening on ${config.host}:${config.port}, lease ${leaseSec}s, max attempts ${maxAttempts}`);
const registration = new RegistryClient(config.kvstore).register(endpointKey('db'), config.advertise, config.registryTtlSec);

onShutdown(async () => {
  await registration.stop();
  await closeServer(server);
  database.close();
});
