import { hostname } from 'node:os';
import { envNumber, envString } from '@uigniter-demo/common/config';
import { sendJson } from '@uigniter-demo/common/http-io';
import { closeServer, listen } from '@uigniter-demo/common/http-server';
import { describeError, log } from '@uigniter-demo/common/log';
import { Router } from '@uigniter-demo/common/router';
import { onShutdown } from '@uigniter-demo/common/shutdown';
import { icsConfig } from '@uigniter-demo/ics-common/ics-config';
import { parseHeartbeat, parseReading, parseSetpoint } from '@uigniter-demo/ics-common/messages';
import { connectMqtt, endMqtt, publishJson, RejectionLog, subscribeOnConnect } from '@uigniter-demo/ics-common/mqtt-connection';
import { LOOP_ACTUATOR } from '@uigniter-demo/ics-common/process-limits';
import { loopOfSetpointTopic, TOPICS } from '@uigniter-demo/ics-common/topics';
import { ActiveStandby } from './active-standby.js';
import { ControlLoops } from './control-loop.js';
import { SetpointStore } from './setpoint-store.js';

const config = icsConfig(9103);
const id = envString('CONTROLLER_ID', hostname());
const priority = envNumber('ROLE_PRIORITY', 1, 1, 10);
const heartbeatMs = envNumber('HEARTBEAT_MS', 200, 10, 60_000);
const takeoverMs = envNumber('TAKEOVER_MS', 1000, 50, 600_000);
const store = new SetpointStore(envString('DATA_DIR', './data'));
const rejections = new RejectionLog('controller');
const loops = new ControlLoops();
let commandsPublished = 0;
let lastSeq = -1;

const mqtt = connectMqtt({ broker: config.broker, clientId: `ics-controller-${id}`, clean: false, label: `controller ${id}` });
const role = new ActiveStandby(id, priority, heartbeatMs, takeoverMs, {
  publishHeartbeat: (heartbeat) => mqtt.publish(TOPICS.heartbeat, JSON.stringify(heartbeat), { qos: 0 }),
  announceActive: (announcement) => {
    publishJson(mqtt, TOPICS.active, announcement, 1, true).catch((err: unknown) => log(`announcement failed: ${describeError(err)}`));
  },
});

mqtt.on('connect', () => role.onConnected());
subscribeOnConnect(mqtt, {
  [TOPICS.readings]: { qos: 0 },
  [TOPICS.setpointsWildcard]: { qos: 1 },
  [TOPICS.heartbeat]: { qos: 0 },
  [TOPICS.active]: { qos: 1 },
});
mqtt.on('close', () => role.onDisconnected());

mqtt.on('message', (topic, payload) => {
  if (topic === TOPICS.readings) {
    const reading = parseReading(payload);
    if (!reading.ok) return rejections.reject(topic, reading.reason);
    if (reading.value.seq === lastSeq) return;
    lastSeq = reading.value.seq;
    const setpoints = store.values;
    if (!role.active) {
      loops.track(reading.value, setpoints);
      return;
    }
    for (const { loop, command } of loops.compute(reading.value, setpoints, role.epoch, id)) {
      // QoS 1: kept by mqtt.js until the broker acknowledges, resent after a reconnect.
      mqtt.publish(TOPICS.command(LOOP_ACTUATOR[loop]), JSON.stringify(command), { qos: 1 });
      commandsPublished++;
    }
    return;
  }
  if (topic === TOPICS.heartbeat || topic === TOPICS.active) {
    if (payload.length === 0) return;
    const message = parseHeartbeat(payload);
    if (!message.ok) return rejections.reject(topic, message.reason);
    role.onPeer(message.value, topic === TOPICS.heartbeat ? 'heartbeat' : 'announcement');
    return;
  }
  const loop = loopOfSetpointTopic(topic);
  if (loop === undefined) return rejections.reject(topic, 'not a setpoint topic this controller knows');
  if (payload.length === 0) return; // a cleared retained setpoint: nothing to do
  const change = parseSetpoint(loop, payload);
  if (!change.ok) return rejections.reject(topic, change.reason);
  if (store.set(loop, change.value.value)) log(`setpoint ${loop} = ${change.value.value}${change.value.by ? ` (by ${change.value.by})` : ''}`);
});

role.start();

const router = new Router()
  .get('/healthz', ({ res }) => sendJson(res, 200, { status: 'ok' }))
  .get('/status', ({ res }) =>
    sendJson(res, 200, {
      id,
      priority,
      role: role.active ? 'active' : 'standby',
      epoch: role.epoch,
      seenEpoch: role.seenEpoch,
      activeSince: role.active ? role.activeSince : null,
      setpoints: store.values,
      mqttConnected: mqtt.connected,
      lastSeq,
      commandsPublished,
      rejected: rejections.count,
      rejections: rejections.recent,
    }),
  );
const server = await listen(router, config.port, config.host);
log(`controller ${id} (priority ${priority}) listening on ${config.host}:${config.port}; broker ${config.broker}, heartbeat ${heartbeatMs} ms, takeover after ${takeoverMs} ms`);

onShutdown(async () => {
  role.stop();
  await endMqtt(mqtt);
  await closeServer(server);
});
