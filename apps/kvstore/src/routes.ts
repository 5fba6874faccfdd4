import { HttpError, invalidField } from '@uigniter-demo/common/http-error';
import { readBody, sendEmpty, sendJson, sendText } from '@uigniter-demo/common/http-io';
import { Router } from '@uigniter-demo/common/router';
import type { TtlStore } from './ttl-store.js';

const KEY_PATTERN = /^[A-Za-z0-9._:-]{1,256}$/;
const RESERVED_KEYS = new Set(['healthz']);
const MAX_VALUE_BYTES = 4096;
const MAX_TTL_SEC = 365 * 24 * 3600;

function validKey(raw: string | undefined): string {
  const key = raw ?? '';
  if (!KEY_PATTERN.test(key)) throw invalidField('key', `key must match ${KEY_PATTERN.source}`);
  if (RESERVED_KEYS.has(key)) throw invalidField('key', `key "${key}" is reserved`);
  return key;
}

function parseTtl(raw: string | null): number | undefined {
  if (raw === null) return undefined;
  const ttl = Number(raw);
  if (raw === '' || !Number.isFinite(ttl) || ttl <= 0 || ttl > MAX_TTL_SEC) {
    throw invalidField('ttl', `ttl must be a number of seconds in (0, ${MAX_TTL_SEC}]`);
  }
  return ttl;
}

export function kvstoreRouter(store: TtlStore): Router {
  return new Router()
    .get('/healthz', ({ res }) => sendJson(res, 200, { status: 'ok' }))
    .get('/', ({ res }) => {
      sendText(res, 200, store.list().map(([key, value]) => `${key}=${value}\n`).join(''));
    })
    .get('/:key', ({ res, params }) => {
      const key = validKey(params['key']);
      const value = store.get(key);
      if (value === undefined) throw new HttpError(404, 'not_found', `no live key "${key}"`);
      sendText(res, 200, value);
    })
    .put('/:key', async ({ req, res, params, url }) => {
      const key = validKey(params['key']);
      const ttl = parseTtl(url.searchParams.get('ttl'));
      const body = await readBody(req, MAX_VALUE_BYTES);
      const value = body.toString('utf8');
      // The listing is one `key=value` per line, so a value must stay on one line.
      if (/[\r\n]/.test(value)) throw invalidField('value', 'value must not contain line breaks');
      store.set(key, value, ttl);
      sendEmpty(res, 204);
    })
    .delete('/:key', ({ res, params }) => {
      const key = validKey(params['key']);
      if (!store.delete(key)) throw new HttpError(404, 'not_found', `no live key "${key}"`);
      sendEmpty(res, 204);
    });
}
