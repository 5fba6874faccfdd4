import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { ServiceProcess } from '@uigniter-demo/native';
import { freePort } from '@uigniter-demo/ics-native/free-port';
import { icsService } from '@uigniter-demo/ics-native/ics-service';
import { call, Cleanup, waitFor } from './helpers.js';
import { startBrokerAndHistorian } from './ics-helpers.js';

interface StoredAlarm {
  id: string;
  handledAt: number | null;
  handledBy: string | null;
}

/**
 * The alarm handler runs on demand, sometimes beside a second instance of itself (a pool's
 * spare booting while a replica runs). Each instance must keep its own connection, and an
 * alarm raised while none runs must still be handled once one starts.
 */
describe('ics alarm handler', () => {
  const cleanup = new Cleanup();
  let historian: ServiceProcess;
  let client: MqttClient;
  let mqtt = '';
  after(() => cleanup.run());
  before(async () => {
    ({ historian, client, mqtt } = await startBrokerAndHistorian(cleanup, 'ics-alarm-'));
  });

  const raise = (id: string): Promise<unknown> =>
    client.publishAsync('alarms/raised', JSON.stringify({ id, kind: 'high', tag: 'level1', value: 1.7, seq: 10, raisedAt: Date.now() }), { qos: 1 });
  const stored = async (id: string): Promise<StoredAlarm | undefined> =>
    (await call<{ alarms: StoredAlarm[] }>(`${historian.url}/alarms?from=0`)).body.alarms.find((a) => a.id === id);
  const handler = async (id: string): Promise<ServiceProcess> => {
    const h = icsService(`alarm-${id}`, 'ics-alarm', await freePort(), { BROKER: mqtt, HISTORIAN: historian.url.replace('http://', ''), HANDLER_ID: id });
    h.start();
    cleanup.after(() => h.stop());
    await h.waitHealthy();
    await waitFor(`handler ${id} connected`, () => h.lines.some((l) => l.includes('connected to broker')));
    return h;
  };

  it('two handlers at once keep their own connections and both get a new alarm; one raised before any ran is handled from the historian', async () => {
    await raise('before-any');
    await waitFor('the early alarm stored, pending', async () => (await stored('before-any'))?.handledAt === null);

    const a = await handler('a');
    const early = await waitFor('the early alarm handled', async () => {
      const s = await stored('before-any');
      return s?.handledAt !== null ? s : undefined;
    });
    assert.equal(early?.handledBy, 'a', 'the only handler running handled the alarm raised before it started');
    assert.ok(a.lines.some((l) => l.includes('handled alarm before-any') && l.includes('via historian')), a.tail());

    const linesBeforeB = a.lines.length;
    const b = await handler('b');
    await raise('both-see-it');
    for (const h of [a, b]) await waitFor(`${h.name} handled the new alarm`, () => h.lines.some((l) => l.includes('handled alarm both-see-it')));
    // With one client id shared by both, b's CONNECT made the broker close a's connection.
    const aSinceB = a.lines.slice(linesBeforeB);
    assert.deepEqual(aSinceB.filter((l) => l.includes('lost connection')), [], a.tail());
    for (const h of [a, b]) {
      const status = (await call<{ mqttConnected: boolean }>(`${h.url}/status`)).body;
      assert.equal(status.mqttConnected, true, `${h.name} is still connected`);
    }
    assert.ok((await stored('both-see-it'))?.handledAt !== null, 'the historian recorded it handled');
  });
});
