import { serviceConfig } from '@uigniter-demo/common/config';
import { closeServer, listen } from '@uigniter-demo/common/http-server';
import { log } from '@uigniter-demo/common/log';
import { onShutdown } from '@uigniter-demo/common/shutdown';
import { kvstoreRouter } from './routes.js';
import { TtlStore } from './ttl-store.js';

const config = serviceConfig(9000);
const store = new TtlStore();
const server = await listen(kvstoreRouter(store), config.port, config.host);
log(`kvstore listening on ${config.host}:${config.port}`);

const sweeper = setInterval(() => {
  for (const key of store.sweep()) log(`expired ${key}`);
}, 1000);
sweeper.unref();

onShutdown(async () => {
  clearInterval(sweeper);
  await closeServer(server);
});
