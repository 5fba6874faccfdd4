import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NativeCluster } from '@uigniter-demo/native';
import { call, Cleanup, cluster, getBytes, listObjects, type ErrorReply } from './helpers.js';

const MAX_OBJECT_BYTES = 256 * 1024;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('storage', () => {
  const cleanup = new Cleanup();
  let c: NativeCluster;
  let storage: string;
  let objectsDir: string;
  after(() => cleanup.run());
  before(async () => {
    c = await cluster(cleanup, {
      services: ['kvstore', 'storage'],
      serviceEnv: { storage: { MAX_OBJECT_BYTES: String(MAX_OBJECT_BYTES) } },
    });
    storage = c.urls.storage ?? '';
    objectsDir = join(c.dataDir, 'storage', 'objects');
  });

  function put(id: string, body: Buffer, checksum?: string): Promise<{ status: number; body: unknown; text: string }> {
    const headers: Record<string, string> = checksum === undefined ? {} : { 'x-checksum-sha256': checksum };
    return call(`${storage}/object/${id}`, { method: 'PUT', body, headers });
  }

  it('stores an object with a checksum and serves the same bytes with it', async () => {
    const data = randomBytes(100_000);
    const stored = await put('obj-1', data, sha256(data));
    assert.equal(stored.status, 201, stored.text);
    assert.deepEqual(stored.body, { id: 'obj-1', size: data.length, sha256: sha256(data) });
    const got = await getBytes(`${storage}/object/obj-1`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.bytes, data);
    assert.equal(got.headers.get('x-checksum-sha256'), sha256(data));
    assert.equal(await readFile(join(objectsDir, 'obj-1.sha256'), 'utf8'), sha256(data));
    const head = await fetch(`${storage}/object/obj-1`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(data.length));
    assert.equal(head.headers.get('x-checksum-sha256'), sha256(data));
  });

  it('stores without a checksum header too, and handles empty objects', async () => {
    assert.equal((await put('no-sum', Buffer.from('hello'))).status, 201);
    assert.equal((await getBytes(`${storage}/object/no-sum`)).bytes.toString(), 'hello');
    assert.equal((await put('empty', Buffer.alloc(0), sha256(Buffer.alloc(0)))).status, 201);
    const empty = await getBytes(`${storage}/object/empty`);
    assert.equal(empty.status, 200);
    assert.equal(empty.bytes.length, 0);
  });

  it('refuses a body that does not match its checksum and stores nothing', async () => {
    const before = await readdir(objectsDir);
    const data = randomBytes(5000);
    const wrong = sha256(Buffer.from('something else'));
    const reply = await put('bad-sum', data, wrong);
    assert.equal(reply.status, 400);
    assert.equal((reply.body as ErrorReply).error.code, 'checksum_mismatch');
    assert.equal((await call(`${storage}/object/bad-sum`)).status, 404);
    assert.deepEqual(await readdir(objectsDir), before, 'no file was added');
    assert.deepEqual(await readdir(join(c.dataDir, 'storage', 'tmp')), [], 'no temp file left behind');

    const malformed = await put('bad-sum', data, 'xyz');
    assert.equal(malformed.status, 400);
    assert.equal((malformed.body as ErrorReply).error.field, 'x-checksum-sha256');
    assert.equal((await call(`${storage}/object/bad-sum`)).status, 404);
  });

  it('refuses an object over the size limit and stores nothing', async () => {
    const before = await listObjects(storage);
    const big = randomBytes(MAX_OBJECT_BYTES + 1);
    const reply = await put('too-big', big, sha256(big));
    assert.equal(reply.status, 413);
    assert.equal((reply.body as ErrorReply).error.code, 'too_large');
    // Without content-length the limit is enforced while streaming.
    const chunked = await call(`${storage}/object/too-big`, {
      method: 'PUT',
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < 5; i++) controller.enqueue(randomBytes(MAX_OBJECT_BYTES / 4));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    assert.equal(chunked.status, 413);
    assert.deepEqual(await listObjects(storage), before);
    assert.deepEqual(await readdir(join(c.dataDir, 'storage', 'tmp')), []);
  });

  it('rejects invalid ids with 400', async () => {
    for (const id of ['a%2Fb', '..%2Fescape', 'x'.repeat(129), 'sp%20ace']) {
      const reply = await call<ErrorReply>(`${storage}/object/${id}`, { method: 'PUT', body: 'x' });
      assert.equal(reply.status, 400, id);
      assert.equal(reply.body.error.field, 'id');
    }
  });

  it('detects corruption on read: 500 checksum_mismatch, never the bad bytes', async () => {
    const data = randomBytes(20_000);
    assert.equal((await put('victim', data, sha256(data))).status, 201);
    const file = join(objectsDir, 'victim.data');
    const damaged = Buffer.from(data);
    damaged[12_345] = (damaged[12_345] as number) ^ 0x01;
    await writeFile(file, damaged);
    const flipped = await call<ErrorReply>(`${storage}/object/victim`);
    assert.equal(flipped.status, 500);
    assert.equal(flipped.body.error.code, 'checksum_mismatch');
    assert.match(flipped.headers.get('content-type') ?? '', /json/);

    await writeFile(file, data);
    await truncate(file, 100);
    assert.equal((await call<ErrorReply>(`${storage}/object/victim`)).body.error.code, 'checksum_mismatch');

    await writeFile(file, data);
    assert.deepEqual((await getBytes(`${storage}/object/victim`)).bytes, data, 'repaired file is served again');
    await rm(join(objectsDir, 'victim.sha256'));
    assert.equal((await call(`${storage}/object/victim`)).status, 500, 'a missing checksum is not trusted either');
  });

  it('lists and deletes objects', async () => {
    assert.equal((await put('to-delete', Buffer.from('bye'))).status, 201);
    assert.ok((await listObjects(storage)).includes('to-delete'));
    assert.equal((await call(`${storage}/object/to-delete`, { method: 'DELETE' })).status, 204);
    assert.equal((await call(`${storage}/object/to-delete`)).status, 404);
    assert.equal((await fetch(`${storage}/object/to-delete`, { method: 'HEAD' })).status, 404);
    assert.equal((await call(`${storage}/object/to-delete`, { method: 'DELETE' })).status, 404);
    assert.ok(!(await listObjects(storage)).includes('to-delete'));
    assert.ok(!(await readdir(objectsDir)).some((name) => name.startsWith('to-delete.')));
  });

  it('keeps objects across a SIGKILL and restart', async () => {
    const data = randomBytes(50_000);
    assert.equal((await put('survivor', data, sha256(data))).status, 201);
    await c.kill('storage', 'SIGKILL');
    await c.restart('storage');
    const got = await getBytes(`${storage}/object/survivor`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.bytes, data);
  });
});
