import { pipeline } from 'node:stream/promises';
import { CHECKSUM_HEADER } from '@uigniter-demo/common/checksum';
import { HttpError, invalidField } from '@uigniter-demo/common/http-error';
import { sendEmpty, sendJson, tooLarge } from '@uigniter-demo/common/http-io';
import { describeError, log } from '@uigniter-demo/common/log';
import { Router, type RequestContext } from '@uigniter-demo/common/router';
import { OBJECT_ID_PATTERN } from '@uigniter-demo/common/validate';
import { ChecksumMismatchError, ObjectTooLargeError, type ObjectStore } from './object-store.js';

const SHA256_PATTERN = /^[0-9a-f]{64}$/;

function objectId(ctx: RequestContext): string {
  const id = ctx.params['id'] ?? '';
  if (!OBJECT_ID_PATTERN.test(id)) throw invalidField('id', `object id must match ${OBJECT_ID_PATTERN.source}`);
  return id;
}

function expectedChecksum(ctx: RequestContext): string | undefined {
  const raw = ctx.req.headers[CHECKSUM_HEADER];
  if (raw === undefined) return undefined;
  const value = String(raw).trim().toLowerCase();
  if (!SHA256_PATTERN.test(value)) {
    throw invalidField(CHECKSUM_HEADER, `${CHECKSUM_HEADER} must be 64 hex digits`);
  }
  return value;
}

export function storageRouter(store: ObjectStore, maxObjectBytes: number): Router {
  return new Router()
    .get('/healthz', ({ res }) => sendJson(res, 200, { status: 'ok' }))
    .get('/object', async ({ res }) => sendJson(res, 200, { objects: await store.list() }))
    .put('/object/:id', async (ctx) => {
      const id = objectId(ctx);
      const expected = expectedChecksum(ctx);
      const declared = Number(ctx.req.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxObjectBytes) {
        ctx.req.resume();
        throw tooLarge(maxObjectBytes);
      }
      try {
        const stored = await store.put(id, ctx.req, maxObjectBytes, expected);
        log(`stored ${id} (${stored.size} bytes, sha256 ${stored.sha256.slice(0, 12)}…)`);
        sendJson(ctx.res, 201, { id, ...stored });
      } catch (err) {
        if (err instanceof ObjectTooLargeError) throw tooLarge(err.limitBytes);
        if (err instanceof ChecksumMismatchError) {
          log(`refused ${id}: ${err.message}`);
          throw new HttpError(400, 'checksum_mismatch', `body ${err.message}`, CHECKSUM_HEADER);
        }
        if (!ctx.req.complete) {
          log(`upload of ${id} aborted by the client; nothing stored`);
          throw new HttpError(400, 'aborted', 'the client aborted the upload');
        }
        throw err;
      }
    })
    .get('/object/:id', async (ctx) => {
      const id = objectId(ctx);
      let object;
      try {
        object = await store.openVerified(id);
      } catch (err) {
        if (err instanceof ChecksumMismatchError) {
          log(`CORRUPTED object ${id}: ${err.message}; refusing to serve it`);
          throw new HttpError(500, 'checksum_mismatch', `stored object ${id} is corrupted: ${err.message}`);
        }
        throw err;
      }
      if (!object) throw new HttpError(404, 'not_found', `no object ${id}`);
      ctx.res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': object.size,
        [CHECKSUM_HEADER]: object.sha256,
      });
      try {
        await pipeline(object.stream, ctx.res);
      } catch (err) {
        log(`sending ${id} failed: ${describeError(err)}`);
      }
    })
    .head('/object/:id', async (ctx) => {
      const id = objectId(ctx);
      const object = await store.stat(id);
      if (!object) {
        sendEmpty(ctx.res, 404);
        return;
      }
      ctx.res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': object.size,
        [CHECKSUM_HEADER]: object.sha256,
      });
      ctx.res.end();
    })
    .delete('/object/:id', async (ctx) => {
      const id = objectId(ctx);
      if (!(await store.delete(id))) throw new HttpError(404, 'not_found', `no object ${id}`);
      log(`deleted ${id}`);
      sendEmpty(ctx.res, 204);
    });
}
