import { invalidField } from '@uigniter-demo/common/http-error';
import { sendJson } from '@uigniter-demo/common/http-io';
import { Router } from '@uigniter-demo/common/router';
import type { RejectionLog } from '@uigniter-demo/ics-common/mqtt-connection';
import { READING_TAGS, type HistoryStore, type ReadingTag } from './history-store.js';

function timeParam(url: URL, field: string, fallback: number): number {
  const raw = url.searchParams.get(field);
  if (raw === null || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    throw invalidField(field, `query parameter "${field}" must be a time in ms since the epoch`);
  }
  return value;
}

export interface HistorianCounters {
  commands: Record<string, number>;
  rejections: RejectionLog;
}

export function historianRouter(store: HistoryStore, counters: HistorianCounters): Router {
  return new Router()
    .get('/healthz', ({ res }) => sendJson(res, 200, { status: 'ok' }))
    .get('/readings', ({ res, url }) => {
      const from = timeParam(url, 'from', 0);
      const to = timeParam(url, 'to', Number.MAX_SAFE_INTEGER);
      const limit = Math.min(100_000, timeParam(url, 'limit', 10_000));
      const tag = url.searchParams.get('tag');
      if (tag !== null && !(READING_TAGS as readonly string[]).includes(tag)) {
        throw invalidField('tag', `query parameter "tag" must be one of ${READING_TAGS.join(', ')}`);
      }
      const rows = store.readings(from, to, limit);
      const readings = tag === null ? rows : rows.map((r) => ({ t: r['t'], seq: r['seq'], sampleTime: r['sampleTime'], value: r[tag as ReadingTag] }));
      sendJson(res, 200, { from, to, tag, count: readings.length, readings });
    })
    .get('/alarms/pending', ({ res }) => sendJson(res, 200, { pending: store.pendingAlarms() }))
    .get('/alarms', ({ res, url }) => {
      const from = timeParam(url, 'from', 0);
      const to = timeParam(url, 'to', Number.MAX_SAFE_INTEGER);
      const pendingOnly = url.searchParams.get('pending') === '1';
      const alarms = store.alarms(from, to, pendingOnly);
      sendJson(res, 200, { from, to, count: alarms.length, alarms });
    })
    .get('/stats', ({ res }) =>
      sendJson(res, 200, {
        ...store.counts(),
        pendingAlarms: store.pendingAlarms(),
        commands: counters.commands,
        rejected: counters.rejections.count,
        rejections: counters.rejections.recent,
      }),
    );
}
