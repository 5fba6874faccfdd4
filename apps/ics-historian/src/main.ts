import { join } from 'node:path';
import { envString } from '@uigniter-demo/common/config';
import { closeServer, listen } from '@uigniter-demo/common/http-server';
import { describeError, log } from '@uigniter-demo/common/log';
import { onShutdown } from '@uigniter-demo/common/shutdown';
import { icsConfig } from '@uigniter-demo/ics-common/ics-config';
import { parseAlarmHandled, parseAlarmRaised, parseCommand, parseReading } from '@uigniter-demo/ics-common/messages';
import { connectMqtt, endMqtt, RejectionLog, subscribeOnConnect } from '@uigniter-demo/ics-common/mqtt-connection';
import { actuatorOfCommandTopic, TOPICS } from '@uigniter-demo/ics-common/topics';
import { HistoryStore } from './history-store.js';
import { historianRouter } from './routes.js';

const config = icsConfig(9104);
const file = join(envString('DATA_DIR', './data'), 'historian.sqlite');
const store = new HistoryStore(file);
const rejections = new RejectionLog('historian');
const commands: Record<string, number> = {};
log(`historian database ${file}: ${JSON.stringify(store.counts())}`);

function onMessage(topic: string, payload: Buffer): void {
  if (topic === TOPICS.readings) {
    const reading = parseReading(payload);
    if (!reading.ok) return rejections.reject(topic, reading.reason);
    store.addReading(reading.value);
    return;
  }
  if (topic === TOPICS.alarmsRaised) {
    const alarm = parseAlarmRaised(payload);
    if (!alarm.ok) return rejections.reject(topic, alarm.reason);
    const fresh = store.alarmRaised(alarm.value);
    log(`${fresh ? 'recorded' : 'duplicate delivery of'} alarm ${alarm.value.id}: ${alarm.value.kind} ${alarm.value.tag} = ${alarm.value.value}`);
    return;
  }
  if (topic === TOPICS.alarmsHandled) {
    const handled = parseAlarmHandled(payload);
    if (!handled.ok) return rejections.reject(topic, handled.reason);
    store.alarmHandled(handled.value);
    log(`alarm ${handled.value.id} handled by ${handled.value.by}: ${handled.value.action}`);
    return;
  }
  const actuator = actuatorOfCommandTopic(topic);
  if (actuator === undefined) return rejections.reject(topic, 'not a topic the historian records');
  const command = parseCommand(payload);
  if (!command.ok) return rejections.reject(topic, command.reason);
  commands[actuator] = (commands[actuator] ?? 0) + 1;
}

// Persistent session: alarms raised or handled while we are down are delivered later.
const mqtt = connectMqtt({ broker: config.broker, clientId: envString('CLIENT_ID', 'ics-historian'), clean: false, label: 'historian' });
// PUBACK only once the alarm is in the database (fsynced).
mqtt.handleMessage = (packet, done) => {
  if (packet.cmd === 'publish') {
    try {
      onMessage(packet.topic, Buffer.from(packet.payload));
    } catch (err) {
      log(`message on ${packet.topic} failed: ${describeError(err)}`);
    }
  }
  done();
};
subscribeOnConnect(mqtt, {
  [TOPICS.readings]: { qos: 0 },
  [TOPICS.commandsWildcard]: { qos: 0 },
  [TOPICS.alarmsRaised]: { qos: 1 },
  [TOPICS.alarmsHandled]: { qos: 1 },
});

const flushTimer = setInterval(() => store.flush(), 500);
const server = await listen(historianRouter(store, { commands, rejections }), config.port, config.host);
log(`historian listening on ${config.host}:${config.port}; broker ${config.broker}`);

onShutdown(async () => {
  clearInterval(flushTimer);
  await endMqtt(mqtt);
  await closeServer(server);
  store.close();
});
