import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PNG } from 'pngjs';
import { makeSamplePng } from '@uigniter-demo/common/sample-png';
import type { NativeCluster } from '@uigniter-demo/native';
import { call, Cleanup, cluster, getStats, listObjects, postJson, uploadFile, type ErrorReply } from './helpers.js';

const MAX_UPLOAD_BYTES = 200_000;
const MAX_PIXELS = 100_000;

/** A flat image: tiny as a file however many pixels it has. */
function flatPng(width: number, height: number): Buffer {
  return PNG.sync.write(new PNG({ width, height }), { colorType: 6 });
}

describe('master', () => {
  const cleanup = new Cleanup();
  let c: NativeCluster;
  let master: string;
  let storage: string;
  let db: string;
  after(() => cleanup.run());
  before(async () => {
    c = await cluster(cleanup, {
      services: ['kvstore', 'db', 'storage', 'master'],
      serviceEnv: {
        master: { MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES), MAX_PIXELS: String(MAX_PIXELS), BACKEND_DEADLINE_MS: '1500' },
      },
    });
    master = c.urls.master ?? '';
    storage = c.urls.storage ?? '';
    db = c.urls.db ?? '';
  });

  /** Runs a rejected upload and checks that neither storage nor db gained anything. */
  async function expectRejected(
    upload: () => Promise<{ status: number; body: unknown }>,
    status: number,
    code: string,
  ): Promise<ErrorReply> {
    const objectsBefore = await listObjects(storage);
    const totalBefore = (await getStats(db)).total;
    const reply = await upload();
    assert.equal(reply.status, status, JSON.stringify(reply.body));
    const body = reply.body as ErrorReply;
    assert.equal(body.error.code, code);
    assert.deepEqual(await listObjects(storage), objectsBefore, 'storage has no new object');
    assert.equal((await getStats(db)).total, totalBefore, 'db has no new task');
    return body;
  }

  it('answers /healthz', async () => {
    assert.equal((await call(`${master}/healthz`)).status, 200);
  });

  it('rejects a file that is not a PNG with 415 not_png', async () => {
    await expectRejected(() => uploadFile(master, Buffer.from('just some text, not an image')), 415, 'not_png');
    await expectRejected(() => uploadFile(master, Buffer.alloc(0)), 415, 'not_png');
    const jpegish = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46, 0, 1]);
    await expectRejected(() => uploadFile(master, jpegish, 'image', 'x.jpg', 'image/jpeg'), 415, 'not_png');
  });

  it('rejects a PNG signature with a broken or truncated body with 415', async () => {
    const good = makeSamplePng(3, 40, 30);
    await expectRejected(() => uploadFile(master, good.subarray(0, 20)), 415, 'not_png');
    await expectRejected(() => uploadFile(master, good.subarray(0, good.length - 30)), 415, 'not_png');
    const corrupt = Buffer.from(good);
    corrupt[60] = (corrupt[60] as number) ^ 0xff;
    await expectRejected(() => uploadFile(master, corrupt), 415, 'not_png');
  });

  it('rejects an upload over MAX_UPLOAD_BYTES with 413 too_large', async () => {
    const big = makeSamplePng(4, 300, 300);
    assert.ok(big.length > MAX_UPLOAD_BYTES + 64 * 1024, `sample is ${big.length} bytes`);
    await expectRejected(() => uploadFile(master, big), 413, 'too_large');
    // Just over the limit: passes the content-length pre-check, caught while parsing.
    const slightlyBig = Buffer.concat([makeSamplePng(5, 20, 20), Buffer.alloc(MAX_UPLOAD_BYTES)]);
    await expectRejected(() => uploadFile(master, slightlyBig), 413, 'too_large');
  });

  it('rejects an image with too many pixels with 413', async () => {
    await expectRejected(() => uploadFile(master, flatPng(400, 300)), 413, 'too_many_pixels');
  });

  it('rejects a form without the image file field with 400 naming the field', async () => {
    const png = makeSamplePng(6, 10, 10);
    const wrongName = await expectRejected(() => uploadFile(master, png, 'picture'), 400, 'missing_field');
    assert.equal(wrongName.error.field, 'image');
    const asText = await expectRejected(
      () => {
        const form = new FormData();
        form.append('image', 'not a file');
        return call(`${master}/task`, { method: 'POST', body: form });
      },
      400,
      'missing_field',
    );
    assert.equal(asText.error.field, 'image');
    await expectRejected(
      () => call(`${master}/task`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png }),
      415,
      'unsupported_media_type',
    );
    await expectRejected(() => postJson(`${master}/task`, { image: 'x' }), 415, 'unsupported_media_type');
  });

  it('accepts a PNG: stores it with its checksum and creates a ready task', async () => {
    const objectsBefore = await listObjects(storage);
    const png = makeSamplePng(7, 64, 48);
    const reply = await uploadFile(master, png);
    assert.equal(reply.status, 201, reply.text);
    assert.equal(reply.body.state, 'ready');
    assert.equal(typeof reply.body.id, 'number');
    assert.equal(reply.headers.get('location'), `/task/${reply.body.id}`);

    const added = (await listObjects(storage)).filter((id) => !objectsBefore.includes(id));
    assert.equal(added.length, 1);
    assert.match(added[0] ?? '', /^input-[0-9a-f-]{36}$/);
    const stored = await fetch(`${storage}/object/${added[0]}`);
    assert.deepEqual(Buffer.from(await stored.arrayBuffer()), png, 'storage holds the exact upload');

    const task = await call<Record<string, unknown>>(`${master}/task/${reply.body.id}`);
    assert.equal(task.status, 200);
    assert.equal(task.body['state'], 'ready');
    assert.equal(task.body['input'], added[0]);
    assert.ok(!('leaseToken' in task.body), 'the public API does not expose lease tokens');

    const notReady = await call<ErrorReply>(`${master}/task/${reply.body.id}/result`);
    assert.equal(notReady.status, 409);
    assert.equal(notReady.body.error.code, 'not_ready');
  });

  it('answers 404 for unknown tasks and 400 for bad ids', async () => {
    const unknown = await call<ErrorReply>(`${master}/task/987654`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'not_found');
    const unknownResult = await call<ErrorReply>(`${master}/task/987654/result`);
    assert.equal(unknownResult.status, 404);
    assert.equal(unknownResult.body.error.code, 'not_found');
    assert.equal((await call(`${master}/task/abc`)).status, 400);
    assert.equal((await call(`${master}/task/0/result`)).status, 400);
  });

  it('answers 503 quickly when storage is down, storing nothing', async () => {
    const totalBefore = (await getStats(db)).total;
    await c.kill('storage', 'SIGKILL');
    try {
      const started = Date.now();
      const reply = await uploadFile(master, makeSamplePng(8, 16, 16));
      assert.equal(reply.status, 503, reply.text);
      assert.equal(reply.body.error?.code, 'unavailable');
      assert.ok(Date.now() - started < 10_000, 'within the retry budget, not hanging');
      assert.equal((await getStats(db)).total, totalBefore);
    } finally {
      await c.restart('storage');
    }
    const reply = await uploadFile(master, makeSamplePng(9, 16, 16));
    assert.equal(reply.status, 201, 'works again once storage is back');
  });
});
