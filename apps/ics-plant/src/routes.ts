import { invalidField } from '@uigniter-demo/common/http-error';
import { readJsonObject, sendJson } from '@uigniter-demo/common/http-io';
import { Router } from '@uigniter-demo/common/router';
import { LEVEL_LIMITS, TANK_HEIGHT_M, TEMP_LIMITS } from '@uigniter-demo/ics-common/process-limits';
import { parseFault } from './faults.js';
import type { PlantRuntime } from './plant-runtime.js';

function sinceParam(url: URL): number {
  const raw = url.searchParams.get('since');
  if (raw === null || raw === '') return -1;
  const since = Number(raw);
  if (!Number.isFinite(since)) throw invalidField('since', 'query parameter "since" must be a number of ms (plant time)');
  return since;
}

export function plantRouter(plant: PlantRuntime): Router {
  return new Router()
    .get('/healthz', ({ res }) => sendJson(res, 200, { status: 'ok' }))
    .get('/state', ({ res }) => {
      const { sample, t } = plant.latestSample();
      sendJson(res, 200, {
        now: plant.now(),
        t,
        seq: sample?.seq ?? 0,
        seed: plant.options.seed,
        periodMs: plant.options.periodMs,
        levels: { level1: sample?.level1 ?? 0, level2: sample?.level2 ?? 0 },
        temp: sample?.temp ?? 0,
        valves: { inflow1: sample?.inflow1 ?? 0, inflow2: sample?.inflow2 ?? 0, heater: sample?.heater ?? 0 },
        truth: sample?.truth ?? null,
        faults: plant.model.activeFaults(),
        limits: { level: { ...LEVEL_LIMITS, tankHeight: TANK_HEIGHT_M }, temp: TEMP_LIMITS },
      });
    })
    .post('/faults', async ({ req, res }) => {
      const fault = parseFault(await readJsonObject(req));
      plant.injectFault(fault);
      sendJson(res, 201, { accepted: fault, step: plant.model.step, t: plant.now() });
    })
    .get('/trace', ({ res, url }) => {
      const entries = plant.trace.since(sinceParam(url));
      sendJson(res, 200, { now: plant.now(), entries });
    })
    .get('/latency', ({ res, url }) => {
      sendJson(res, 200, { now: plant.now(), ...plant.latency.report(sinceParam(url)) });
    });
}
