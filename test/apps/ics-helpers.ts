import type { MqttClient } from 'mqtt';
import type { ServiceProcess } from '@uigniter-demo/native';
import { connectMqtt, endMqtt, whenConnected } from '@uigniter-demo/ics-common/mqtt-connection';
import { freePort } from '@uigniter-demo/ics-native/free-port';
import { icsService } from '@uigniter-demo/ics-native/ics-service';
import { tempDir, waitFor, type Cleanup } from './helpers.js';

/** A broker and a historian as host processes, and a test client connected to the broker. */
export interface BrokerAndHistorian {
  historian: ServiceProcess;
  client: MqttClient;
  /** host:port of the broker's MQTT listener. */
  mqtt: string;
}

export async function startBrokerAndHistorian(cleanup: Cleanup, prefix: string): Promise<BrokerAndHistorian> {
  const dataDir = await tempDir(cleanup, prefix);
  const mqttPort = await freePort();
  const broker = icsService('broker', 'ics-broker', await freePort(), { MQTT_PORT: String(mqttPort), DATA_DIR: `${dataDir}/broker` });
  broker.start();
  cleanup.after(() => broker.stop());
  await broker.waitHealthy();
  const mqtt = `127.0.0.1:${mqttPort}`;
  const historian = icsService('historian', 'ics-historian', await freePort(), { BROKER: mqtt, DATA_DIR: `${dataDir}/historian` });
  historian.start();
  cleanup.after(() => historian.stop());
  await historian.waitHealthy();
  await waitFor('historian connected', () => historian.lines.some((l) => l.includes('connected to broker')));
  const client = connectMqtt({ broker: mqtt, clientId: `${prefix}client`, clean: true, quiet: true });
  cleanup.after(() => endMqtt(client, true));
  await whenConnected(client);
  return { historian, client, mqtt };
}
