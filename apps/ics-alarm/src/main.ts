import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { envString, parseHostPort } from '@uigniter-demo/common/config';
import { sendJson } from '@uigniter-demo/common/http-io';
import { closeServer, listen } from '@uigniter-demo/common/http-server';
import { describeError, log } from '@uigniter-demo/common/log';
import { Router } from '@uigniter-demo/common/router';
import { onShutdown } from '@uigniter-demo/common/shutdown';
import { icsConfig } from '@uigniter-demo/ics-common/ics-config';
import { parseAlarmRaised, parseReading, type AlarmHandled, type AlarmRaised } from '@uigniter-demo/ics-common/messages';
import { connectMqtt, endMqtt, publishJson, RejectionLog, subscribeOnConnect } from '@uigniter-demo/ics-common/mqtt-connection';
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
 * The historian is the record of pending alarms; MQTT is the fast path. Each
 * handler instance connects with its own client id and a clean session, so a
 * second instance (a pool's spare booting while a replica runs, a clone of the
 * same snapshot, a service with max > 1) never takes another's session over:
 * with one shared persistent session the broker handed it back and forth, and
 * an alarm delivered to a spare that was then paused waited there unhandled.
 * An alarm raised while no handler runs is not queued by the broker: the
 * handler asks the historian for pending alarms once subscribed, and again
 * every CATCH_UP_MS while it runs, so none is missed between the two. Ids
 * already handled are skipped; if two instances both handle one alarm, the
 * historian keeps the first answer (and the safe command is the same).
 */
const CATCH_UP_MS = 1000;
const clientPrefix = envString('CLIENT_ID', 'ics-alarm');
// Asked before every connect: the hostname follows a clone's renewal, and the random part
// (renewed in a clone by the runtime's hooks) tells host processes apart.
const clientId = (): string => `${clientPrefix}-${hostname()}-${randomBytes(4).toString('hex')}`;
const mqtt = connectMqtt({ broker: config.broker, clientId, clean: true, label: 'alarm' });

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
subscribeOnConnect(mqtt, { [TOPICS.alarmsRaised]: { qos: 1 }, [TOPICS.readings]: { qos: 0 } }, () => void catchUpFromHistorian());

let catchingUp = false;
let lastCatchUpError = '';
async function catchUpFromHistorian(): Promise<void> {
  if (historian === '' || catchingUp) return;
  catchingUp = true;
  try {
    const res = await fetch(`http://${historian}/alarms?pending=1`, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { alarms?: unknown[] };
    for (const stored of body.alarms ?? []) {
      const alarm = parseAlarmRaised(JSON.stringify(stored));
      if (alarm.ok) handle(alarm.value, 'historian');
    }
    lastCatchUpError = '';
  } catch (err) {
    const message = describeError(err);
    if (message !== lastCatchUpError) log(`could not ask the historian for pending alarms: ${message}`);
    lastCatchUpError = message;
  } finally {
    catchingUp = false;
  }
}
const catchUpTimer = setInterval(() => void catchUpFromHistorian(), CATCH_UP_MS);

const router = new Router()
  // Ready only with a broker connection: a handler that cannot hear alarms is not ready (a
  // pool then pauses its spare connected, and a cold boot is ready once connected).
  .get('/healthz', ({ res }) => (mqtt.connected ? sendJson(res, 200, { status: 'ok' }) : sendJson(res, 503, { status: 'connecting to the broker' })))
  .get('/status', ({ res }) => sendJson(res, 200, { handled: handledCount, mqttConnected: mqtt.connected, rejected: rejections.count, rejections: rejections.recent }));
const server = await listen(router, config.port, config.host);
log(`alarm handler listening on ${config.host}:${config.port}; broker ${config.broker}${historian ? `, historian ${historian}` : ''}`);

onShutdown(async () => {
  clearInterval(catchUpTimer);
  await endMqtt(mqtt);
  await closeServer(server);
});
