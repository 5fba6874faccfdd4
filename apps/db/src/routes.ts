import { HttpError } from '@uigniter-demo/common/http-error';
import { readJsonObject, sendJson } from '@uigniter-demo/common/http-io';
import { log } from '@uigniter-demo/common/log';
import { Router, type RequestContext } from '@uigniter-demo/common/router';
import { OBJECT_ID_PATTERN, parsePositiveInt, requireString } from '@uigniter-demo/common/validate';
import type { LeaseChange, TaskRepository } from './task-repository.js';

const WORKER_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
const TOKEN_PATTERN = /^[A-Za-z0-9-]{1,64}$/;

function taskId(ctx: RequestContext): number {
  return parsePositiveInt(ctx.params['id'] ?? '', 'id');
}

/** Maps a lease holder's request outcome to HTTP; `action` names it in logs and errors. */
function answer(ctx: RequestContext, id: number, action: string, change: LeaseChange): void {
  switch (change.outcome) {
    case 'changed':
    case 'unchanged':
      sendJson(ctx.res, 200, change.task);
      return;
    case 'not_found':
      throw new HttpError(404, 'not_found', `no task ${id}`);
    case 'lease_lost':
      log(`refused ${action} of task ${id}: lease token is stale (task is ${change.task.state}, held by ${change.task.leaseOwner ?? 'nobody'})`);
      throw new HttpError(409, 'lease_lost', `lease token no longer holds task ${id} (state ${change.task.state})`);
  }
}

export function dbRouter(tasks: TaskRepository): Router {
  return new Router()
    .get('/healthz', ({ res }) => {
      tasks.stats();
      sendJson(res, 200, { status: 'ok' });
    })
    .get('/stats', ({ res }) => sendJson(res, 200, tasks.stats()))
    .post('/task', async ({ req, res }) => {
      const body = await readJsonObject(req);
      const input = requireString(body, 'input', OBJECT_ID_PATTERN);
      const { task, created } = tasks.create(input);
      if (created) log(`task ${task.id} created for ${input}`);
      sendJson(res, created ? 201 : 200, task, { location: `/task/${task.id}` });
    })
    .get('/task/next', ({ res, url }) => {
      const worker = url.searchParams.get('worker') ?? '';
      if (!WORKER_PATTERN.test(worker)) {
        throw new HttpError(400, 'invalid_field', `query parameter worker must match ${WORKER_PATTERN.source}`, 'worker');
      }
      const leased = tasks.leaseNext(worker);
      if (!leased) {
        res.writeHead(204).end();
        return;
      }
      const { task, expiredOwner } = leased;
      const takeover = expiredOwner === null ? '' : ` (lease of ${expiredOwner} expired)`;
      log(`task ${task.id} leased by ${worker}, attempt ${task.attempts}${takeover}`);
      sendJson(res, 200, task);
    })
    .get('/task/:id', (ctx) => {
      const id = taskId(ctx);
      const task = tasks.get(id);
      if (!task) throw new HttpError(404, 'not_found', `no task ${id}`);
      sendJson(ctx.res, 200, task);
    })
    .post('/task/:id/heartbeat', async (ctx) => {
      const id = taskId(ctx);
      const body = await readJsonObject(ctx.req);
      const token = requireString(body, 'leaseToken', TOKEN_PATTERN);
      answer(ctx, id, 'heartbeat', tasks.heartbeat(id, token));
    })
    .post('/task/:id/finish', async (ctx) => {
      const id = taskId(ctx);
      const body = await readJsonObject(ctx.req);
      const token = requireString(body, 'leaseToken', TOKEN_PATTERN);
      const result = requireString(body, 'result', OBJECT_ID_PATTERN);
      const change = tasks.finish(id, token, result);
      if (change.outcome === 'changed') log(`task ${id} done by ${change.task.finishedBy ?? '?'}: ${result}`);
      answer(ctx, id, 'finish', change);
    })
    .post('/task/:id/fail', async (ctx) => {
      const id = taskId(ctx);
      const body = await readJsonObject(ctx.req);
      const token = requireString(body, 'leaseToken', TOKEN_PATTERN);
      const error = requireString(body, 'error', undefined, 2000);
      const change = tasks.fail(id, token, error);
      if (change.outcome === 'changed') log(`task ${id} failed on ${change.task.finishedBy ?? '?'}: ${error}`);
      answer(ctx, id, 'fail', change);
    })
    .post('/task/:id/release', async (ctx) => {
      const id = taskId(ctx);
      const body = await readJsonObject(ctx.req);
      const token = requireString(body, 'leaseToken', TOKEN_PATTERN);
      const change = tasks.release(id, token);
      if (change.outcome === 'changed') log(`task ${id} released, ready again`);
      answer(ctx, id, 'release', change);
    });
}
