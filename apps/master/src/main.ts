import { envNumber, serviceConfig } from '@uigniter-demo/common/config';
import { closeServer, listen } from '@uigniter-demo/common/http-server';
import { log } from '@uigniter-demo/common/log';
import { endpointKey, RegistryClient } from '@uigniter-demo/common/registry-client';
import { ServiceEndpoint } from '@uigniter-demo/common/service-endpoint';
import { onShutdown } from '@uigniter-demo/common/shutdown';
import { StorageClient } from '@uigniter-demo/common/storage-client';
import { TaskClient } from '@uigniter-demo/common/task-client';
import { masterRouter } from './routes.js';

const config = serviceConfig(9003);
const maxUploadBytes = envNumber('MAX_UPLOAD_BYTES', 8 * 1024 * 1024, 1);
// 4 Mpx decode to 16 MiB of RGBA, which a worker VM holds a few times over.
const maxPixels = envNumber('MAX_PIXELS', 4 * 1024 * 1024, 1);
const backendDeadlineMs = envNumber('BACKEND_DEADLINE_MS', 8000, 0);

const registry = new RegistryClient(config.kvstore);
const router = masterRouter({
  tasks: new TaskClient(new ServiceEndpoint(registry, 'db', backendDeadlineMs)),
  storage: new StorageClient(new ServiceEndpoint(registry, 'storage', backendDeadlineMs)),
  maxUploadBytes,
  maxPixels,
  backendDeadlineMs,
});
const server = await listen(router, config.port, config.host);
log(`master listening on ${config.host}:${config.port}, uploads up to ${maxUploadBytes} bytes and ${maxPixels} pixels`);
const registration = registry.register(endpointKey('master'), config.advertise, config.registryTtlSec);

onShutdown(async () => {
  await registration.stop();
  await closeServer(server);
});
