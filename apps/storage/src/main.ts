import { envNumber, envString, serviceConfig } from '@uigniter-demo/common/config';
import { closeServer, listen } from '@uigniter-demo/common/http-server';
import { log } from '@uigniter-demo/common/log';
import { endpointKey, RegistryClient } from '@uigniter-demo/common/registry-client';
import { onShutdown } from '@uigniter-demo/common/shutdown';
import { ObjectStore } from './object-store.js';
import { storageRouter } from './routes.js';

const config = serviceConfig(9002);
const dataDir = envString('DATA_DIR', './data');
const maxObjectBytes = envNumber('MAX_OBJECT_BYTES', 16 * 1024 * 1024, 1);

const store = new ObjectStore(dataDir);
const count = await store.init();
log(`storage opened ${store.objectsDir}: ${count} objects`);

const server = await listen(storageRouter(store, maxObjectBytes), config.port, config.host);
log(`storage listening on ${config.host}:${config.port}`);
const registration = new RegistryClient(config.kvstore).register(endpointKey('storage'), config.advertise, config.registryTtlSec);

onShutdown(async () => {
  await registration.stop();
  await closeServer(server);
});
