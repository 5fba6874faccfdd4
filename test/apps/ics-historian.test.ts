import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { ServiceProcess } from '@uigniter-demo/native';
import { call, Cleanup, waitFor, type ErrorReply } from './helpers.js';
import { startBrokerAndHistorian } from './ics-helpers.js';

interface StoredAlarm {
  id: string;
  kind: string;
  deliveries: number;
  handledAt: number | null;
  handledMs: number | null;
}

describe('ics historian', () => {
  const cleanup = new Cleanup();
  let historian: ServiceProcess;
  let client: MqttClient;
  after(() => cleanup.run());
  before(async () => {
    ({ historian, client } = await startBrokerAndHistorian(cleanup, 'ics-historian-'));
  });

  const alarm = (id: string): string => JSON.stringify({ id, kind: 'high', tag: 'level1', value: 1.7, seq: 10, raisedAt: Date.now() });

  it('stores an alarm delivered twice once, and two different alarms twice (control); counts them pending until handled', async () => {
    const from = Date.now() - 1;
    await client.publishAsync('alarms/raised', alarm('dup-1'), { qos: 1 });
    await client.publishAsync('alarms/raised', alarm('dup-1'), { qos: 1 });
    await client.publishAsync('alarms/raised', alarm('other-2'), { qos: 1 });
    const stored = await waitFor('both alarms stored', async () => {
      const reply = await call<{ alarms: StoredAlarm[] }>(`${historian.url}/alarms?from=${from}`);
      const dup = reply.body.alarms.find((a) => a.id === 'dup-1');
      return reply.body.alarms.length === 2 && dup?.deliveries === 2 ? reply.body.alarms : undefined;
    });
    assert.deepEqual(stored.map((a) => a.id).sort(), ['dup-1', 'other-2']);
    assert.equal((await call<{ pending: number }>(`${historian.url}/alarms/pending`)).body.pending, 2);
    await client.publishAsync('alarms/handled', JSON.stringify({ id: 'dup-1', handledAt: Date.now(), action: 'logged', by: 'test' }), { qos: 1 });
    await waitFor('one alarm handled', async () => (await call<{ pending: number }>(`${historian.url}/alarms/pending`)).body.pending === 1);
    const handled = (await call<{ alarms: StoredAlarm[] }>(`${historian.url}/alarms?from=${from}`)).body.alarms.find((a) => a.id === 'dup-1');
    assert.ok(handled?.handledMs !== null && (handled?.handledMs ?? -1) >= 0);
  });

  it('rejects malformed messages and changes nothing; a valid reading is stored (control)', async () => {
    const before = (await call<{ readings: number; alarms: number; rejected: number }>(`${historian.url}/stats`)).body;
    await client.publishAsync('alarms/raised', '{"id": 5}', { qos: 1 });
    await client.publishAsync('plant/readings', 'not json', { qos: 1 });
    await client.publishAsync('alarms/handled', '{}', { qos: 1 });
    await waitFor('three rejections', async () => (await call<{ rejected: number }>(`${historian.url}/stats`)).body.rejected === before.rejected + 3);
    const middle = (await call<{ readings: number; alarms: number }>(`${historian.url}/stats`)).body;
    assert.equal(middle.alarms, before.alarms);
    assert.equal(middle.readings, before.readings);
    const reading = { seq: 5, sampleTime: 500, level1: 1, level2: 1, temp: 45, inflow1: 0.5, inflow2: 0.5, heater: 0.4, publishedAt: Date.now() };
    await client.publishAsync('plant/readings', JSON.stringify(reading), { qos: 1 });
    await waitFor('the reading stored', async () => (await call<{ readings: number }>(`${historian.url}/stats`)).body.readings === before.readings + 1);
    const series = await call<{ readings: Array<{ seq: number; value: number }> }>(`${historian.url}/readings?tag=temp&from=0`);
    assert.deepEqual(series.body.readings.map((r) => [r.seq, r.value]), [[5, 45]]);
  });

  it('answers bad range queries with 400 naming the field', async () => {
    const badTag = await call<ErrorReply>(`${historian.url}/readings?tag=pressure`);
    assert.equal(badTag.status, 400);
    assert.equal(badTag.body.error.field, 'tag');
    const badFrom = await call<ErrorReply>(`${historian.url}/alarms?from=yesterday`);
    assert.equal(badFrom.status, 400);
    assert.equal(badFrom.body.error.field, 'from');
  });
});
