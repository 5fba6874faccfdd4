import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NativeCluster } from '@uigniter-demo/native';
import { call, Cleanup, cluster, waitFor, type ErrorReply } from './helpers.js';

describe('kvstore', () => {
  const cleanup = new Cleanup();
  let c: NativeCluster;
  let kv: string;
  after(() => cleanup.run());
  before(async () => {
    c = await cluster(cleanup, { services: ['kvstore'] });
    kv = c.urls.kvstore;
  });

  it('answers /healthz', async () => {
    const reply = await call<{ status: string }>(`${kv}/healthz`);
    assert.equal(reply.status, 200);
    assert.equal(reply.body.status, 'ok');
  });

  it('stores, returns and deletes a permanent key', async () => {
    assert.equal((await call(`${kv}/plain`, { method: 'PUT', body: 'v1' })).status, 204);
    const got = await call(`${kv}/plain`);
    assert.equal(got.status, 200);
    assert.equal(got.text, 'v1');
    assert.match(got.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal((await call(`${kv}/plain`, { method: 'PUT', body: 'v2' })).status, 204);
    assert.equal((await call(`${kv}/plain`)).text, 'v2');
    assert.equal((await call(`${kv}/plain`, { method: 'DELETE' })).status, 204);
    const gone = await call<ErrorReply>(`${kv}/plain`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, 'not_found');
    assert.equal((await call(`${kv}/plain`, { method: 'DELETE' })).status, 404);
  });

  it('lists live entries as sorted key=value lines and drops expired keys', async () => {
    await call(`${kv}/storageendpoint`, { method: 'PUT', body: 'storage:9002' });
    await call(`${kv}/dbendpoint`, { method: 'PUT', body: 'db:9001' });
    await call(`${kv}/masterendpoint?ttl=60`, { method: 'PUT', body: 'master:9003' });
    await call(`${kv}/worker-w9endpoint?ttl=0.6`, { method: 'PUT', body: 'w9:9004' });
    const before = await call(`${kv}/`);
    assert.equal(before.status, 200);
    assert.equal(
      before.text,
      'dbendpoint=db:9001\nmasterendpoint=master:9003\nstorageendpoint=storage:9002\nworker-w9endpoint=w9:9004\n',
    );
    assert.equal((await call(`${kv}/worker-w9endpoint`)).text, 'w9:9004');

    await waitFor('the ttl key to expire', async () => (await call(`${kv}/worker-w9endpoint`)).status === 404, 5000);
    const afterExpiry = await call(`${kv}/`);
    assert.equal(afterExpiry.text, 'dbendpoint=db:9001\nmasterendpoint=master:9003\nstorageendpoint=storage:9002\n');
    for (const key of ['dbendpoint', 'masterendpoint', 'storageendpoint']) await call(`${kv}/${key}`, { method: 'DELETE' });
  });

  it('re-putting a key with a ttl refreshes it (a heartbeat keeps a service listed)', async () => {
    const started = Date.now();
    while (Date.now() - started < 1500) {
      await call(`${kv}/beat?ttl=0.5`, { method: 'PUT', body: 'alive' });
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    assert.equal((await call(`${kv}/beat`)).text, 'alive');
    await waitFor('the key to lapse once heartbeats stop', async () => (await call(`${kv}/beat`)).status === 404, 5000);
  });

  it('rejects bad keys, ttls and values with 400 naming the field', async () => {
    const badTtl = await call<ErrorReply>(`${kv}/k?ttl=-1`, { method: 'PUT', body: 'x' });
    assert.equal(badTtl.status, 400);
    assert.equal(badTtl.body.error.field, 'ttl');
    const nanTtl = await call<ErrorReply>(`${kv}/k?ttl=abc`, { method: 'PUT', body: 'x' });
    assert.equal(nanTtl.status, 400);
    const badKey = await call<ErrorReply>(`${kv}/bad%20key`, { method: 'PUT', body: 'x' });
    assert.equal(badKey.status, 400);
    assert.equal(badKey.body.error.field, 'key');
    const newline = await call<ErrorReply>(`${kv}/k`, { method: 'PUT', body: 'a\nb=c' });
    assert.equal(newline.status, 400);
    assert.equal(newline.body.error.field, 'value');
    const tooBig = await call<ErrorReply>(`${kv}/k`, { method: 'PUT', body: 'x'.repeat(5000) });
    assert.equal(tooBig.status, 413);
    assert.equal((await call(`${kv}/k`)).status, 404, 'nothing was stored by the rejected requests');
    assert.equal((await call(`${kv}/k`, { method: 'POST', body: 'x' })).status, 405);
  });
});

describe('service registration', () => {
  it('a registered service is listed, vanishes after its TTL when killed, and deregisters on SIGTERM', async (t) => {
    const c = await cluster(t, { services: ['kvstore', 'db', 'storage'], env: { REGISTRY_TTL_SEC: '1' } });
    const kv = c.urls.kvstore;
    const dbAddress = new URL(c.urls.db ?? '').host;
    const storageAddress = new URL(c.urls.storage ?? '').host;
    await waitFor('both registrations', async () => {
      const listing = (await call(`${kv}/`)).text;
      return listing.includes(`dbendpoint=${dbAddress}\n`) && listing.includes(`storageendpoint=${storageAddress}\n`);
    });
    // Heartbeats (every TTL/3) keep the keys well past one TTL.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal((await call(`${kv}/dbendpoint`)).text, dbAddress);

    await c.kill('db', 'SIGKILL');
    const killedAt = Date.now();
    await waitFor('dbendpoint to expire', async () => (await call(`${kv}/dbendpoint`)).status === 404, 5000);
    assert.ok(Date.now() - killedAt < 3000, 'a killed service disappears within about one TTL');

    await c.kill('storage', 'SIGTERM');
    assert.equal((await call(`${kv}/storageendpoint`)).status, 404, 'a stopped service removes its own key');
  });
});
