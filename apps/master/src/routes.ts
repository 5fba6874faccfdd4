import { randomUUID } from 'node:crypto';
import { HttpError } from '@uigniter-demo/common/http-error';
import { sendJson } from '@uigniter-demo/common/http-io';
import { describeError, log } from '@uigniter-demo/common/log';
import { Router, type RequestContext } from '@uigniter-demo/common/router';
import type { StorageClient } from '@uigniter-demo/common/storage-client';
import type { TaskClient } from '@uigniter-demo/common/task-client';
import type { TaskRecord } from '@uigniter-demo/common/task-record';
import { parsePositiveInt } from '@uigniter-demo/common/validate';
import { callBackend } from './backends.js';
import { receiveFileField } from './multipart-upload.js';
import { checkPng } from './png-check.js';

export interface MasterOptions {
  tasks: TaskClient;
  storage: StorageClient;
  maxUploadBytes: number;
  maxPixels: number;
  /** How long to keep retrying db or storage before answering 503. */
  backendDeadlineMs: number;
}

/** The task as users see it: the lease token is the workers' business only. */
export type PublicTask = Omit<TaskRecord, 'leaseToken'>;

function publicTask(task: TaskRecord): PublicTask {
  const { leaseToken: _hidden, ...visible } = task;
  return visible;
}

function taskId(ctx: RequestContext): number {
  return parsePositiveInt(ctx.params['id'] ?? '', 'id');
}

async function existingTask(tasks: TaskClient, id: number, deadlineMs: number): Promise<TaskRecord> {
  const task = await callBackend(`get task ${id}`, () => tasks.get(id), deadlineMs);
  if (!task) throw new HttpError(404, 'not_found', `no task ${id}`);
  return task;
}

export function masterRouter(options: MasterOptions): Router {
  const { tasks, storage, backendDeadlineMs: deadline } = options;
  return new Router()
    .get('/healthz', ({ res }) => sendJson(res, 200, { status: 'ok' }))
    .get('/stats', async ({ res }) => sendJson(res, 200, await callBackend('task stats', () => tasks.stats(), deadline)))
    .post('/task', async ({ req, res }) => {
      const image = await receiveFileField(req, 'image', options.maxUploadBytes);
      const { width, height } = await checkPng(image, options.maxPixels);
      // Only a fully validated upload reaches storage.
      const input = `input-${randomUUID()}`;
      await callBackend(`store ${input}`, () => storage.put(input, image), deadline);
      let task: TaskRecord;
      try {
        task = await callBackend(`create task for ${input}`, () => tasks.create(input), deadline);
      } catch (err) {
        // Without a task nothing would ever read the input: do not leave it behind.
        await storage.delete(input).catch((deleteErr: unknown) => {
          log(`could not remove orphan ${input}: ${describeError(deleteErr)}`);
        });
        throw err;
      }
      log(`task ${task.id} accepted: ${width}x${height} PNG, ${image.length} bytes as ${input}`);
      sendJson(res, 201, { id: task.id, state: task.state }, { location: `/task/${task.id}` });
    })
    .get('/task/:id', async (ctx) => {
      sendJson(ctx.res, 200, publicTask(await existingTask(tasks, taskId(ctx), deadline)));
    })
    .get('/task/:id/result', async (ctx) => {
      const task = await existingTask(tasks, taskId(ctx), deadline);
      if (task.state === 'failed') {
        throw new HttpError(409, 'task_failed', `task ${task.id} failed: ${task.error ?? 'unknown error'}`);
      }
      if (task.state !== 'done' || task.result === null) {
        throw new HttpError(409, 'not_ready', `task ${task.id} is ${task.state}`);
      }
      const resultId = task.result;
      const png = await callBackend(`fetch ${resultId}`, () => storage.get(resultId), deadline);
      if (!png) throw new HttpError(500, 'result_missing', `task ${task.id} is done but ${resultId} is not in storage`);
      ctx.res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
      ctx.res.end(png);
    });
}
