import { envString, parseHostPort } from '@uigniter-demo/common/config';
import { sendJson } from '@uigniter-demo/common/http-io';
import { closeServer, listen } from '@uigniter-demo/common/http-server';
import { describeError, log } from '@uigniter-demo/common/log';
import { Router } from '@uigniter-demo/common/router';
import { onShutdown } from '@uigniter-demo/common/shutdown';
import { icsConfig } from '@uigniter-demo/ics-common/ics-config';
import { parseAlarmRaised, parseReading, type AlarmHandled, type AlarmRaised } from '@uigniter-demo/ics-common/messages';
import { connectMqtt, endMqtt, publishJson, RejectionLog, subscribeOnConnect, whenConnected } from '@uigniter-demo/ics-common/mqtt-connection';
import { TOPICS } from '@uigniter-demo/ics-common/topics';
import { actionFor } from './alarm-actions.js';

const config = icsConfig(9105);
const by = envString('HANDLER_ID', 'alarm-handler');
const historian = envString('HISTORIAN', '');
if (historian !== '') parseHostPort(historian);
const rejections = new RejectionLog('alarm');
const handledIds = new Set<string>();
let latestSeq = 0;
let handledCount = 0;

/*
 * A fixed client id with clean:false: the broker keeps this session (and,
 * with its file-backed persistence, across its own restarts) while the
 * handler is scaled to zero, and queues every alarms/raised for it. On
 * start the handler also asks the historian for alarms still pending, in
 * case one was raised before this session ever existed; ids already handled
 * are skipped, so an alarm delivered both ways is handled once.
 */
const mqtt = connectMqtt({ broker: config.broker, clientId: envString('CLIENT_ID', 'ics-alarm'), clean: false, label: 'alarm' });

/**
 * Publishes the safe command (if any) and alarms/handled, QoS 1, without
 * waiting for their PUBACKs: mqtt.js reads incoming packets one at a time,
 * so waiting inside handleMessage would block the very PUBACKs we wait for.
 * mqtt.js keeps both until acknowledged (resending after a reconnect); if
 * the handler dies first the alarm stays pending in the historian, the
 * autoscaler starts the handler again and it catches up from there.
 */
function handle(alarm: AlarmRaised, via: string): void {
  if (handledIds.has(alarm.id)) return;
  handledIds.add(alarm.id);
  const action = actionFor(alarm, latestSeq, by);
  const logFailure = (what: string) => (err: unknown) => log(`${what} for alarm ${alarm.id} not published: ${describeError(err)}`);
  if (action.command) {
    publishJson(mqtt, TOPICS.command(action.command.actuator), action.command.command, 1).catch(logFailure('safe command'));
  }
  const handled: AlarmHandled = { id: alarm.id, handledAt: Date.now(), action: action.description, by };
  publishJson(mqtt, TOPICS.alarmsHandled, handled, 1).catch(logFailure('alarms/handled'));
  handledCount++;
  log(`handled alarm ${alarm.id} (${alarm.kind} ${alarm.tag}, via ${via}, ${handled.handledAt - alarm.raisedAt} ms after raised): ${action.description}`);
}

// PUBACK once the alarm has been handled (its answers handed to mqtt.js).
mqtt.handleMessage = (packet, done) => {
  if (packet.cmd !== 'publish') return done();
  const payload = Buffer.from(packet.payload);
  if (packet.topic === TOPICS.readings) {
    const reading = parseReading(payload);
    if (reading.ok) latestSeq = reading.value.seq;
    else rejections.reject(packet.topic, reading.reason);
    return done();
  }
  if (packet.topic !== TOPICS.alarmsRaised) {
    rejections.reject(packet.topic, 'not a topic the alarm handler knows');
    return done();
  }
  const alarm = parseAlarmRaised(payload);
  if (!alarm.ok) {
    rejections.reject(packet.topic, alarm.reason);
    return done();
  }
  handle(alarm.value, 'mqtt');
  done();
};
subscribeOnConnect(mqtt, { [TOPICS.alarmsRaised]: { qos: 1 }, [TOPICS.readings]: { qos: 0 } });

async function catchUpFromHistorian(): Promise<void> {
  if (historian === '') return;
  try {
    const res = await fetch(`http://${historian}/alarms?pending=1`, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { alarms?: unknown[] };
    for (const stored of body.alarms ?? []) {
      const alarm = parseAlarmRaised(JSON.stringify(stored));
      if (alarm.ok) handle(alarm.value, 'historian');
    }
  } catch (err) {
    log(`could not ask the historian for pending alarms: ${describeError(err)}`);
  }
}

const router = new Router()
  .get('/healthz', ({ res }) => sendJson(res, 200, { status: 'ok' }))
  .get('/status', ({ res }) => sendJson(res, 200, { handled: handledCount, mqttConnected: mqtt.connected, rejected: rejections.count, rejections: rejections.recent }));
const server = await listen(router, config.port, config.host);
log(`alarm handler listening on ${config.host}:${config.port}; broker ${config.broker}${historian ? `, historian ${historian}` : ''}`);
void whenConnected(mqtt).then(catchUpFromHistorian, () => undefined);

onShutdown(async () => {
  await endMqtt(mqtt);
  await closeServer(server);
});
