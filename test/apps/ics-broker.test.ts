import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import type { ServiceProcess } from '@uigniter-demo/native';
import { connectMqtt, endMqtt, whenConnected } from '@uigniter-demo/ics-common/mqtt-connection';
import { freePort } from '@uigniter-demo/ics-native/free-port';
import { icsService } from '@uigniter-demo/ics-native/ics-service';
import { tempDir, type Teardown } from './helpers.js';

async function startBroker(t: Teardown, persistence: 'sqlite' | 'memory'): Promise<{ broker: ServiceProcess; address: string; dataDir: string }> {
  const dataDir = await tempDir(t, 'ics-broker-');
  const mqttPort = await freePort();
  const broker = icsService('broker', 'ics-broker', await freePort(), { MQTT_PORT: String(mqttPort), DATA_DIR: dataDir, BROKER_PERSISTENCE: persistence });
  broker.start();
  t.after(() => broker.stop());
  await broker.waitHealthy();
  return { broker, address: `127.0.0.1:${mqttPort}`, dataDir };
}

/**
 * Waits until the broker's file holds the retained message on `topic` and a queued message
 * for `clientId`. aedes 1.x writes a QoS 1 PUBACK before it stores the message (retained,
 * queued for offline sessions): a kill in that window loses an acknowledged message, which
 * is aedes' contract, not a restart's fault. What this file must keep is what it stored.
 */
async function stored(dataDir: string, topic: string, clientId: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const db = new Database(join(dataDir, 'broker.sqlite'), { readonly: true, fileMustExist: true });
    try {
      const retained = db.prepare('SELECT 1 FROM retained WHERE topic = ?').get(topic);
      const queued = db.prepare('SELECT 1 FROM outgoing WHERE client_id = ?').get(clientId);
      if (retained && queued) return;
    } finally {
      db.close();
    }
    if (Date.now() > deadline) throw new Error(`the broker did not store the retained message on ${topic} and a message queued for ${clientId} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function subscriber(address: string, clientId: string, received: string[]): Promise<MqttClient> {
  const client = connectMqtt({ broker: address, clientId, clean: false, label: clientId, quiet: true });
  client.on('message', (topic, payload) => received.push(`${topic} ${payload.toString()}`));
  await whenConnected(client);
  await client.subscribeAsync('plant/commands/+', { qos: 1 });
  return client;
}

async function publishAcked(address: string, topic: string, payload: string, retain = false): Promise<void> {
  const client = connectMqtt({ broker: address, clientId: `pub-${Math.random().toString(36).slice(2)}`, clean: true, quiet: true });
  await whenConnected(client);
  await client.publishAsync(topic, payload, { qos: 1, retain });
  await endMqtt(client);
}

/**
 * Publishes a marker on `topic` and waits until `seen` holds it: whatever the broker had
 * queued or retained for that subscription was sent before it, so what `seen` holds then
 * is all there is (no sleep decides what counts as delivered).
 */
async function upTo(address: string, topic: string, seen: string[], timeoutMs = 15_000): Promise<string[]> {
  const marker = `marker-${Math.random().toString(36).slice(2)}`;
  await publishAcked(address, topic, marker);
  const deadline = Date.now() + timeoutMs;
  while (!seen.includes(`${topic} ${marker}`)) {
    if (Date.now() > deadline) throw new Error(`the marker on ${topic} never arrived (seen: ${JSON.stringify(seen)})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return seen.filter((m) => !m.startsWith(`${topic} marker-`));
}

/**
 * A subscriber with a persistent session is offline; a QoS 1 command is
 * acknowledged by the broker; the broker is killed (SIGKILL) and started
 * again; the subscriber reconnects. With the file-backed persistence it
 * gets the command; with aedes' in-memory persistence (the control) it
 * does not, which shows the test can see the loss.
 */
async function commandAfterBrokerKill(t: Teardown, persistence: 'sqlite' | 'memory'): Promise<{ received: string[]; retained: string[] }> {
  const { broker, address, dataDir } = await startBroker(t, persistence);
  const received: string[] = [];
  const first = await subscriber(address, 'gateway-under-test', received);
  await endMqtt(first);
  await publishAcked(address, 'plant/commands/inflow1', 'queued-while-offline');
  await publishAcked(address, 'control/active', 'retained-announcement', true);
  // The in-memory control has no file to wait on; it loses the messages either way.
  if (persistence === 'sqlite') await stored(dataDir, 'control/active', 'gateway-under-test');
  await broker.kill('SIGKILL');
  broker.start();
  await broker.waitHealthy();
  const again = connectMqtt({ broker: address, clientId: 'gateway-under-test', clean: false, quiet: true });
  again.on('message', (topic, payload) => received.push(`${topic} ${payload.toString()}`));
  t.after(() => endMqtt(again, true));
  await whenConnected(again);
  // A broker that lost the session lost its subscription too: subscribe again so the
  // marker can arrive either way (the persisted one was queued before it regardless).
  await again.subscribeAsync('plant/commands/+', { qos: 1 });
  const retained: string[] = [];
  const reader = connectMqtt({ broker: address, clientId: 'retained-reader', clean: true, quiet: true });
  reader.on('message', (topic, payload) => retained.push(`${topic} ${payload.toString()}`));
  t.after(() => endMqtt(reader, true));
  await whenConnected(reader);
  await reader.subscribeAsync('control/active', { qos: 1 });
  return { received: await upTo(address, 'plant/commands/inflow1', received), retained: await upTo(address, 'control/active', retained) };
}

describe('ics broker', () => {
  it('keeps QoS 1 commands for an offline persistent session, and retained messages, across a SIGKILL restart', async (t) => {
    const { received, retained } = await commandAfterBrokerKill(t, 'sqlite');
    assert.deepEqual(received, ['plant/commands/inflow1 queued-while-offline']);
    assert.deepEqual(retained, ['control/active retained-announcement']);
  });

  it('control: with the in-memory persistence the same restart loses them', async (t) => {
    const { received, retained } = await commandAfterBrokerKill(t, 'memory');
    assert.deepEqual(received, []);
    assert.deepEqual(retained, []);
  });

  it('delivers a queued command once: after it is acknowledged, a second restart does not redeliver it', async (t) => {
    const { broker, address } = await startBroker(t, 'sqlite');
    const received: string[] = [];
    const client = await subscriber(address, 'once', received);
    await publishAcked(address, 'plant/commands/heater', 'one');
    assert.deepEqual(await upTo(address, 'plant/commands/heater', received), ['plant/commands/heater one']);
    await endMqtt(client);
    await broker.kill('SIGKILL');
    broker.start();
    await broker.waitHealthy();
    const again = await subscriber(address, 'once', received);
    t.after(() => endMqtt(again, true));
    await publishAcked(address, 'plant/commands/heater', 'two');
    assert.deepEqual(await upTo(address, 'plant/commands/heater', received), ['plant/commands/heater one', 'plant/commands/heater two'], "'one' is not delivered again");
  });
});
