import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildFixture, startTestDaemon, type TestDaemon } from '../daemon-harness.js';
import { FIXTURES } from '../helpers.js';

interface Answer {
  status: number;
  body: { error?: { code: string; message: string; field?: string } } & Record<string, unknown>;
}

/** Bad input gets a 4xx with a JSON error naming the problem, and changes nothing. */
describe('API input checking', () => {
  let d: TestDaemon;
  const send = async (method: string, path: string, body?: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Answer> => {
    const res = await fetch(`${d.url}${path}`, { method, headers: body === undefined ? {} : headers, ...(body === undefined ? {} : { body }) });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Answer['body']) : {} };
  };

  before(async () => {
    d = await startTestDaemon();
    await buildFixture(d.home, join(FIXTURES, 'hello'), 'hello');
    // Ready before any case runs: a VM still booting changes its record on its own, and a
    // comparison before and after a bad request would race with it.
    const taken = await d.client.run({ image: 'hello', name: 'taken' }, 'ready');
    assert.equal(taken.state, 'running');
  });
  after(async () => {
    await d?.destroy();
  });

  const cases: [string, string, string, string | undefined, number, string, string | undefined, RegExp][] = [
    ['malformed JSON', 'POST', '/vm/run', '{"image": "hello",', 400, 'invalid_argument', undefined, /JSON/],
    ['an unknown field', 'POST', '/vm/run', JSON.stringify({ image: 'hello', colour: 'red' }), 400, 'invalid_argument', 'colour', /unknown field 'colour'/],
    ['a missing image', 'POST', '/vm/run', JSON.stringify({ name: 'x' }), 400, 'invalid_argument', 'image', /missing field 'image'/],
    ['negative memory', 'POST', '/vm/run', JSON.stringify({ image: 'hello', memMiB: -5 }), 400, 'invalid_argument', 'memMiB', /memMiB must be >= 1/],
    ['memory as a string', 'POST', '/vm/run', JSON.stringify({ image: 'hello', memMiB: '256' }), 400, 'invalid_argument', 'memMiB', /memMiB/],
    ['memory below the image minimum', 'POST', '/vm/run', JSON.stringify({ image: 'hello', memMiB: 64 }), 400, 'invalid_argument', 'memMiB', /below the minimum/],
    ['a bad port', 'POST', '/vm/run', JSON.stringify({ image: 'hello', ports: [{ hostPort: 70000, guestPort: 80 }] }), 400, 'invalid_argument', 'ports[0].hostPort', /ports\[0\]\.hostPort/],
    ['a bad name', 'POST', '/vm/run', JSON.stringify({ image: 'hello', name: 'Bad_Name' }), 400, 'invalid_argument', 'name', /name/],
    ['a bad env name', 'POST', '/vm/run', JSON.stringify({ image: 'hello', env: { '1X': 'y' } }), 400, 'invalid_argument', 'env', /env/],
    ['an unknown image', 'POST', '/vm/run', JSON.stringify({ image: 'nope' }), 404, 'not_found', 'image', /image 'nope:latest' not found/],
    ['an image name with ..', 'POST', '/vm/run', JSON.stringify({ image: '../../etc' }), 400, 'invalid_argument', 'image', /must not contain/],
    ['a name clash', 'POST', '/vm/run', JSON.stringify({ image: 'hello', name: 'taken' }), 409, 'already_exists', 'name', /a VM named 'taken' already exists/],
    ['stop of an unknown id', 'POST', '/vm/nosuchvm/stop', '', 404, 'not_found', undefined, /VM 'nosuchvm' not found/],
    ['start of a running VM', 'POST', '/vm/taken/start', '', 409, 'conflict', undefined, /only a stopped, failed or suspended VM can be started/],
    ['delete of an unknown id', 'DELETE', '/vm/nosuchvm', undefined, 404, 'not_found', undefined, /not found/],
    ['a bad wait value', 'POST', '/vm/run?wait=forever', JSON.stringify({ image: 'hello' }), 400, 'invalid_argument', 'wait', /wait/],
    ['a bad stop timeout', 'POST', '/vm/taken/stop?timeout=-1', '', 400, 'invalid_argument', 'timeout', /timeout/],
    ['an oversized body', 'POST', '/vm/run', JSON.stringify({ image: 'hello', env: { BIG: 'x'.repeat(100_000) } }), 413, 'payload_too_large', undefined, /too large/],
    ['readOnly as a string', 'POST', '/vm/run', JSON.stringify({ image: 'hello', readOnly: 'yes' }), 400, 'invalid_argument', 'readOnly', /readOnly/],
    ['a code cache too small', 'POST', '/vm/run', JSON.stringify({ image: 'hello', codeCacheMiB: 8 }), 400, 'invalid_argument', 'codeCacheMiB', /codeCacheMiB/],
    ['a legacy read_only as a string', 'POST', '/vm/run', JSON.stringify({ image_name: 'hello', read_only: 'true' }), 400, 'invalid_argument', 'read_only', /read_only must be a boolean/],
    ['a legacy body with an unknown field', 'POST', '/vm/run', JSON.stringify({ image_name: 'hello', memory: 5 }), 400, 'invalid_argument', 'memory', /unknown field 'memory'/],
    ['an image build from a relative path', 'POST', '/images', JSON.stringify({ path: 'apps/x', name: 'x' }), 400, 'invalid_argument', 'path', /must be absolute/],
    ['an image build from a missing directory', 'POST', '/images', JSON.stringify({ path: '/nonexistent', name: 'x' }), 400, 'invalid_argument', 'path', /does not exist/],
    ['an image build from a file', 'POST', '/images', JSON.stringify({ path: '/etc/hostname', name: 'x' }), 400, 'invalid_argument', 'path', /is not a directory/],
    ['removal of an image a VM uses', 'DELETE', '/images/hello', undefined, 409, 'in_use', undefined, /used by VM taken/],
    ['an unknown route', 'GET', '/vms', undefined, 404, 'not_found', undefined, /no route/],
  ];

  for (const [what, method, path, body, status, code, field, message] of cases) {
    it(`${what}: ${status} ${code}`, async () => {
      const before = { vms: await d.client.list(), leases: d.leases(), taps: await d.taps(), images: await d.client.images() };
      const r = await send(method, path, body);
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.error?.code, code);
      assert.match(r.body.error?.message ?? '', message);
      if (field) assert.equal(r.body.error?.field, field);
      const afterState = { vms: await d.client.list(), leases: d.leases(), taps: await d.taps(), images: await d.client.images() };
      // Every VM is running and idle here, so its whole record is expected to stay as it was.
      assert.deepEqual(afterState.vms, before.vms, 'VMs unchanged');
      assert.deepEqual(afterState.leases, before.leases, 'leases unchanged');
      assert.deepEqual(afterState.taps, before.taps, 'taps unchanged');
      assert.deepEqual(afterState.images, before.images, 'images unchanged');
    });
  }

  it("accepts the original Uigniter's body and answers with ip_address too", async () => {
    const r = await send('POST', '/vm/run', JSON.stringify({ image_name: 'hello', cmdline: 'one "two words"', read_only: true }));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.state, 'running');
    assert.equal(r.body.ip_address, r.body.ip);
    assert.deepEqual(r.body.args, ['one', 'two words']);
    const stop = await send('POST', `/vm/${String(r.body.id)}/stop`, '');
    assert.equal(stop.status, 200);
    assert.equal(stop.body.state, 'stopped');
    const start = await send('POST', `/vm/${String(r.body.id)}/start`, '');
    assert.equal(start.status, 200);
    assert.equal(start.body.ip, r.body.ip);
    await d.client.remove(String(r.body.id), { force: true });
  });

  it('serves an OpenAPI document made from the route schemas', async () => {
    const doc = (await (await fetch(`${d.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: unknown }>> };
    assert.match(doc.openapi, /^3\./);
    for (const p of ['/vm/run', '/vm/{id}/start', '/vm/{id}/stop', '/vm', '/vm/{id}', '/vm/{id}/logs', '/images', '/images/{name}', '/volumes', '/volumes/{name}', '/healthz', '/metrics']) {
      assert.ok(doc.paths[p], `path ${p} documented`);
    }
    assert.ok(doc.paths['/vm/run']!.post!.requestBody, 'the run body schema is in the document');
  });

  it('exports Prometheus metrics: VMs by state, boot latency, API latency', async () => {
    const text = await (await fetch(`${d.url}/metrics`)).text();
    assert.match(text, /uigniter_vms\{state="running"\} 1/);
    assert.match(text, /uigniter_vm_boot_seconds_count [1-9]/);
    assert.match(text, /uigniter_http_request_duration_seconds_bucket\{[^}]*route="\/vm\/run"/);
  });
});

describe('API auth', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon({ args: ['--token', 's3cret'] });
  });
  after(async () => {
    await d?.destroy();
  });

  it('requires the bearer token when one is set; /healthz stays open', async () => {
    assert.equal((await fetch(`${d.url}/healthz`)).status, 200);
    const denied = await fetch(`${d.url}/vm`);
    assert.equal(denied.status, 401);
    assert.equal(((await denied.json()) as { error: { code: string } }).error.code, 'unauthorized');
    const ok = await fetch(`${d.url}/vm`, { headers: { authorization: 'Bearer s3cret' } });
    assert.equal(ok.status, 200);
  });
});
