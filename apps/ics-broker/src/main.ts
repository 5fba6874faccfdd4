import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import { envNumber, envString } from '@uigniter-demo/common/config';
import { sendJson } from '@uigniter-demo/common/http-io';
import { closeServer, listen } from '@uigniter-demo/common/http-server';
import { log } from '@uigniter-demo/common/log';
import { Router } from '@uigniter-demo/common/router';
import { onShutdown } from '@uigniter-demo/common/shutdown';
import { SqlitePersistence } from './sqlite-persistence.js';

const port = envNumber('PORT', 9101, 1, 65535);
const mqttPort = envNumber('MQTT_PORT', 1883, 1, 65535);
const host = envString('HOST', '0.0.0.0');
const dataDir = envString('DATA_DIR', './data');
// `memory` exists for the test that shows what the file-backed persistence buys.
const persistenceKind = envString('BROKER_PERSISTENCE', 'sqlite');
// WAL + NORMAL survives a killed broker process (what a restart is); FULL
// also fsyncs every commit, for a VM that is powered off without warning.
const sync = envString('BROKER_SYNC', 'normal');
if (persistenceKind !== 'sqlite' && persistenceKind !== 'memory') throw new Error(`BROKER_PERSISTENCE=${persistenceKind}: use sqlite or memory`);
if (sync !== 'normal' && sync !== 'full') throw new Error(`BROKER_SYNC=${sync}: use normal or full`);

const file = join(dataDir, 'broker.sqlite');
const persistence = persistenceKind === 'sqlite' ? new SqlitePersistence(file, sync) : undefined;
if (persistence) {
  const counts = persistence.counts();
  log(`broker state ${file}: ${counts.retained} retained, ${counts.subscriptions} subscriptions, ${counts.queued} queued QoS 1 messages`);
} else {
  log('broker persistence: memory (state is lost on restart)');
}
const broker = await Aedes.createBroker(persistence ? { persistence } : {});
broker.on('client', (client) => log(`client connected: ${client.id}`));
broker.on('clientDisconnect', (client) => log(`client disconnected: ${client.id}`));
broker.on('clientError', (client, err) => log(`client ${client.id} error: ${err.message}`));

const mqttServer: Server = createServer(broker.handle);
await new Promise<void>((resolve, reject) => {
  mqttServer.once('error', reject);
  mqttServer.listen(mqttPort, host, () => resolve());
});

const router = new Router()
  .get('/healthz', ({ res }) => sendJson(res, 200, { status: 'ok' }))
  .get('/stats', ({ res }) => sendJson(res, 200, { clients: broker.connectedClients, persistence: persistenceKind, ...(persistence?.counts() ?? {}) }));
const http = await listen(router, port, host);
log(`broker listening on ${host}:${mqttPort} (MQTT), ${host}:${port} (HTTP); persistence ${persistenceKind}${persistence ? ` (synchronous=${sync})` : ''}`);

onShutdown(async () => {
  await new Promise<void>((resolve) => {
    mqttServer.close(() => resolve());
    broker.close(() => undefined);
  });
  await closeServer(http);
  await persistence?.destroy();
});
