import { envString, parseHostPort } from '@uigniter-demo/common/config';
import { sendJson } from '@uigniter-demo/common/http-io';
import { closeServer, listen } from '@uigniter-demo/common/http-server';
import { describeError, log } from '@uigniter-demo/common/log';
import { Router } from '@uigniter-demo/common/router';
import { onShutdown } from '@uigniter-demo/common/shutdown';
import { icsConfig } from '@uigniter-demo/ics-common/ics-config';
import { connectMqtt, endMqtt, subscribeOnConnect } from '@uigniter-demo/ics-common/mqtt-connection';
import { TOPICS } from '@uigniter-demo/ics-common/topics';
import { Gateway } from './gateway.js';
import { ModbusLink } from './modbus-link.js';

const config = icsConfig(9102);
const plant = parseHostPort(envString('PLANT', '127.0.0.1:502'));
const clientId = envString('CLIENT_ID', 'ics-iogateway');

const modbus = new ModbusLink(plant.host, plant.port);
// Persistent session: commands published while we reconnect are queued for us.
const mqtt = connectMqtt({ broker: config.broker, clientId, clean: false, label: 'gateway' });
const gateway = new Gateway(modbus, mqtt);

// PUBACK only after the command has been written to the plant (or failed to be).
mqtt.handleMessage = (packet, done) => {
  if (packet.cmd !== 'publish') return done();
  gateway.onMessage(packet.topic, Buffer.from(packet.payload)).then(
    () => done(),
    (err: unknown) => {
      log(`message on ${packet.topic} failed: ${describeError(err)}`);
      done();
    },
  );
};
subscribeOnConnect(mqtt, { [TOPICS.commandsWildcard]: { qos: 1 }, [TOPICS.active]: { qos: 1 } });

const pollTimer = setInterval(() => void gateway.poll(), config.controlPeriodMs);

const router = new Router()
  .get('/healthz', ({ res }) => sendJson(res, 200, { status: 'ok' }))
  .get('/status', ({ res }) =>
    sendJson(res, 200, {
      modbusConnected: modbus.connected,
      mqttConnected: mqtt.connected,
      lastSeq: gateway.lastSeq,
      readingsPublished: gateway.readingsPublished,
      commandsWritten: gateway.commandsWritten,
      alarmsRaised: gateway.alarmsRaised,
      maxEpoch: gateway.maxEpoch,
      rejected: gateway.rejections.count,
      rejections: gateway.rejections.recent,
    }),
  );
const server = await listen(router, config.port, config.host);
log(`iogateway listening on ${config.host}:${config.port}; plant ${plant.host}:${plant.port}, broker ${config.broker}, period ${config.controlPeriodMs} ms`);

onShutdown(async () => {
  clearInterval(pollTimer);
  await endMqtt(mqtt);
  modbus.close();
  await closeServer(server);
});
