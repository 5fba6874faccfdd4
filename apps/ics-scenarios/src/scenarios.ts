import { DEFAULT_SETPOINTS, LEVEL_LIMITS, TANK_HEIGHT_M } from '@uigniter-demo/ics-common/process-limits';
import { ScenarioContext, getJson, sleep, type LatencyReport } from './scenario-context.js';
import type { AlarmReport, ScenarioReport, ScenarioTarget } from './scenario-target.js';
import { commandsIn, maxDeviation, maxOf, overshoot, settlingTimeMs, type TracePoint } from './trajectory.js';

export const SCENARIOS = ['normal', 'setpoint-step', 'controller-failover', 'alarm', 'broker-restart', 'bad-messages'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** Stated bounds (durations are multiplied by the time factor). */
export const BOUNDS = {
  levelToleranceM: 0.05,
  tempToleranceC: 1.5,
  stepOvershoot: 0.25,
  stepSettleMs: 8000,
  tempStepSettleMs: 10_000,
  disturbanceMaxDeviationM: 0.15,
  disturbanceSettleMs: 8000,
  failoverMs: 2000,
  alarmHandledMs: 5000,
  readingsResumeMs: 5000,
  /** Share of loops allowed to miss the deadline where nothing is disturbed. */
  quietMissRatio: 0.02,
} as const;

interface Outcome {
  levelLimit?: number;
  alarms?: AlarmReport[];
  failoverMs?: number | null;
}

type ScenarioBody = (ctx: ScenarioContext, t0: number) => Promise<Outcome>;

/** Runs one scenario against a deployment and returns its report (assertion failures are in `failures`). */
export async function runScenario(name: ScenarioName, target: ScenarioTarget): Promise<ScenarioReport> {
  const ctx = new ScenarioContext(target);
  const started = Date.now();
  let outcome: Outcome = {};
  let t0 = 0;
  try {
    ctx.log(`scenario ${name}: waiting for the baseline`);
    await ctx.baseline();
    t0 = await ctx.plantNow();
    outcome = await BODIES[name](ctx, t0);
  } catch (err) {
    ctx.failures.push(`scenario aborted: ${err instanceof Error ? err.message : String(err)}`);
  }
  const trace = await ctx.trace(t0).catch(() => [] as TracePoint[]);
  const latency = await ctx.latency(t0).catch(() => undefined);
  await ctx.close();
  const maxLevel = trace.length === 0 ? 0 : Math.max(maxOf(trace, 'level1'), maxOf(trace, 'level2'));
  const levelLimit = outcome.levelLimit ?? LEVEL_LIMITS.highHigh;
  const withinLimits = maxLevel < levelLimit;
  ctx.check(withinLimits, `level reached ${maxLevel.toFixed(3)} m, limit ${levelLimit} m`);
  const report: ScenarioReport = {
    scenario: name,
    passed: ctx.failures.length === 0,
    failures: ctx.failures,
    durationMs: Date.now() - started,
    timeFactor: target.timeFactor,
    loopLatencyMs: { p50: round1(latency?.p50), p99: round1(latency?.p99), max: round1(latency?.max), count: latency?.count ?? 0 },
    deadlineMs: latency?.deadlineMs ?? 0,
    deadlineMisses: latency?.deadlineMisses ?? 0,
    alarms: outcome.alarms ?? [],
    failoverMs: outcome.failoverMs ?? null,
    withinLimits,
    maxLevel: Math.round(maxLevel * 1000) / 1000,
    levelLimit,
    details: { ...ctx.details, lateCommands: latency?.late ?? 0, noCommandGaps: latency?.noCommand ?? 0, missesAt: missTimes(latency, t0) },
  };
  ctx.log(`scenario ${name}: ${report.passed ? 'passed' : `FAILED: ${report.failures.join('; ')}`}`);
  return report;
}

/** When the misses happened, in seconds after the scenario's start: "3.2s late 1210ms, 4.0s gap". */
function missTimes(latency: LatencyReport | undefined, t0: number): string {
  return (latency?.misses ?? [])
    .map((m) => `${((m.t - t0) / 1000).toFixed(1)}s ${m.kind === 'late' ? `late ${Math.round(m.latencyMs ?? 0)}ms` : 'gap'}`)
    .join(', ');
}

/** In a quiet scenario almost every loop meets the deadline. */
async function checkQuietLatency(ctx: ScenarioContext, t0: number): Promise<void> {
  const latency = await ctx.latency(t0);
  const loops = Math.max(1, latency.count / 3);
  ctx.check(
    latency.deadlineMisses <= Math.max(1, Math.floor(loops * BOUNDS.quietMissRatio)),
    `${latency.deadlineMisses} deadline misses in ${Math.round(loops)} loops (allowed ${BOUNDS.quietMissRatio * 100}%)`,
  );
  ctx.check(latency.p99 <= latency.deadlineMs, `p99 loop latency ${latency.p99} ms over the ${latency.deadlineMs} ms deadline`);
}

const normal: ScenarioBody = async (ctx, t0) => {
  const watchMs = ctx.target.normalMs ?? ctx.ms(6000);
  await sleep(watchMs);
  const trace = await ctx.trace(t0);
  const dev1 = maxDeviation(trace, 'level1', DEFAULT_SETPOINTS.level1);
  const dev2 = maxDeviation(trace, 'level2', DEFAULT_SETPOINTS.level2);
  const devT = maxDeviation(trace, 'temp', DEFAULT_SETPOINTS.temp);
  Object.assign(ctx.details, { samples: trace.length, maxDeviationLevel1: round(dev1), maxDeviationLevel2: round(dev2), maxDeviationTemp: round(devT) });
  ctx.check(dev1 <= BOUNDS.levelToleranceM, `level1 left ±${BOUNDS.levelToleranceM} m of its setpoint (by ${round(dev1)})`);
  ctx.check(dev2 <= BOUNDS.levelToleranceM, `level2 left ±${BOUNDS.levelToleranceM} m of its setpoint (by ${round(dev2)})`);
  ctx.check(devT <= BOUNDS.tempToleranceC, `temp left ±${BOUNDS.tempToleranceC} °C of its setpoint (by ${round(devT)})`);
  const { periodMs } = await getJson<{ periodMs: number }>(`${ctx.target.plantUrl}/state`);
  ctx.check(trace.length >= watchMs / periodMs - 5, `only ${trace.length} plant samples in ${watchMs / 1000} s (period ${periodMs} ms)`);
  await checkQuietLatency(ctx, t0);
  return {};
};

const setpointStep: ScenarioBody = async (ctx) => {
  const stepAt = await ctx.plantNow();
  await ctx.setSetpoint('level1', 1.3);
  await ctx.setSetpoint('temp', 50);
  await sleep(ctx.ms(12_000));
  const stepTrace = await ctx.trace(stepAt);
  const over = overshoot(stepTrace, 'level1', 1.0, 1.3);
  const settle = settlingTimeMs(stepTrace, 'level1', 1.3, BOUNDS.levelToleranceM, stepAt);
  const overT = overshoot(stepTrace, 'temp', 45, 50);
  const settleT = settlingTimeMs(stepTrace, 'temp', 50, BOUNDS.tempToleranceC, stepAt);
  Object.assign(ctx.details, { level1Overshoot: round(over), level1SettleMs: settle, tempOvershoot: round(overT), tempSettleMs: settleT });
  ctx.check(over <= BOUNDS.stepOvershoot, `level1 overshoot ${round(over)} over ${BOUNDS.stepOvershoot}`);
  ctx.check(settle !== null && settle <= ctx.ms(BOUNDS.stepSettleMs), `level1 settling ${settle} ms (bound ${ctx.ms(BOUNDS.stepSettleMs)})`);
  ctx.check(overT <= BOUNDS.stepOvershoot, `temp overshoot ${round(overT)} over ${BOUNDS.stepOvershoot}`);
  ctx.check(settleT !== null && settleT <= ctx.ms(BOUNDS.tempStepSettleMs), `temp settling ${settleT} ms (bound ${ctx.ms(BOUNDS.tempStepSettleMs)})`);

  // Disturbance: tank 1's outflow up by 50 %; the PI loop must reject it.
  const disturbAt = await ctx.plantNow();
  await ctx.fault({ name: 'outflow-disturbance', tank: 1, factor: 0.5 });
  await sleep(ctx.ms(10_000));
  const disturbTrace = await ctx.trace(disturbAt);
  const dev = maxDeviation(disturbTrace, 'level1', 1.3);
  const recover = settlingTimeMs(disturbTrace, 'level1', 1.3, BOUNDS.levelToleranceM, disturbAt);
  Object.assign(ctx.details, { disturbanceMaxDeviation: round(dev), disturbanceSettleMs: recover });
  ctx.check(dev <= BOUNDS.disturbanceMaxDeviationM, `level1 deviated ${round(dev)} m under the disturbance (bound ${BOUNDS.disturbanceMaxDeviationM})`);
  ctx.check(recover !== null && recover <= ctx.ms(BOUNDS.disturbanceSettleMs), `level1 recovered in ${recover} ms (bound ${ctx.ms(BOUNDS.disturbanceSettleMs)})`);
  await ctx.fault({ name: 'clear' });
  await ctx.setSetpoint('level1', DEFAULT_SETPOINTS.level1);
  await ctx.setSetpoint('temp', DEFAULT_SETPOINTS.temp);
  return {};
};

const controllerFailover: ScenarioBody = async (ctx) => {
  const before = await ctx.activeController();
  const killedAt = await ctx.plantNow();
  ctx.log(`killing active controller ${before.name} (epoch ${before.status.epoch})`);
  await ctx.target.killController(before.name);
  const after = await ctx.waitFor(
    'the standby to take over',
    async () => {
      const { name, status } = await ctx.activeController(500);
      return name !== before.name && status.epoch > before.status.epoch ? { name, status } : undefined;
    },
    ctx.ms(5000),
  );
  await sleep(ctx.ms(3000));
  const trace = await ctx.trace(killedAt - 1000);
  const commands = commandsIn(trace).filter((c) => c.source === 'controller');
  const lastOld = commands.filter((c) => c.epoch === before.status.epoch).at(-1);
  const firstNew = commands.find((c) => c.epoch === after.status.epoch);
  const failoverMs = lastOld && firstNew ? Math.round(firstNew.t - lastOld.t) : null;
  ctx.check(failoverMs !== null && failoverMs <= ctx.ms(BOUNDS.failoverMs), `failover took ${failoverMs} ms (bound ${ctx.ms(BOUNDS.failoverMs)})`);
  const staleAfter = firstNew ? commands.filter((c) => c.t > firstNew.t && c.epoch < after.status.epoch).length : 0;
  ctx.check(staleAfter === 0, `${staleAfter} commands of an older epoch applied after the takeover`);

  // The old active comes back: it must stay standby.
  await ctx.target.restartController(before.name);
  await sleep(ctx.ms(2500));
  const statuses = await ctx.controllers();
  const returned = statuses[before.name];
  ctx.check(returned?.role === 'standby', `restarted ${before.name} is ${returned?.role} (expected standby)`);
  ctx.check(statuses[after.name]?.role === 'active', `${after.name} is no longer active after ${before.name} returned`);
  Object.assign(ctx.details, { killed: before.name, oldEpoch: before.status.epoch, newActive: after.name, newEpoch: after.status.epoch, returnedAs: returned?.role ?? null });
  return { failoverMs };
};

type StoredAlarm = Record<string, unknown>;

/** Alarms in the historian that were not there before (ids, so no clock is compared across machines). */
async function newAlarms(ctx: ScenarioContext, known: Set<string>): Promise<StoredAlarm[]> {
  const { alarms } = await getJson<{ alarms: StoredAlarm[] }>(`${ctx.target.historianUrl}/alarms`);
  return alarms.filter((a) => !known.has(a['id'] as string));
}

const alarm: ScenarioBody = async (ctx) => {
  const wallStart = Date.now();
  const known = new Set((await newAlarms(ctx, new Set())).map((a) => a['id'] as string));
  const gatewayBefore = await ctx.gateway();
  const handlerWasRunning = await ctx.target.alarmHandlerRunning();
  ctx.check(!handlerWasRunning, 'the alarm handler was already running (expected zero replicas)');
  // When the handler was first seen running (the scenario's clock).
  let handlerStartedAt: number | null = null;
  const watch = setInterval(() => {
    void ctx.target.alarmHandlerRunning().then(
      (running) => {
        if (running && handlerStartedAt === null) handlerStartedAt = Date.now();
      },
      () => undefined,
    );
  }, 100);
  try {
    // Tank 2's inflow valve sticks fully open while its outlet is half blocked: high, then high-high.
    await ctx.fault({ name: 'stuck-valve', valve: 'inflow2', position: 1, durationMs: 3000 });
    await ctx.fault({ name: 'outflow-disturbance', tank: 2, factor: -0.5, durationMs: 3000 });
    // And the temperature sensor freezes.
    await ctx.fault({ name: 'frozen-sensor', sensor: 'temp', durationMs: 4000 });
    const stored = await ctx.waitFor(
      'three alarms handled in the historian',
      async () => {
        const raised = (await newAlarms(ctx, known)).filter((a) => a['kind'] !== null);
        return raised.length >= 3 && raised.every((a) => a['handledAt'] !== null) ? raised : undefined;
      },
      ctx.ms(20_000),
      200,
    );
    await sleep(ctx.ms(1000));
    const gatewayAfter = await ctx.gateway();
    const raisedByGateway = gatewayAfter.alarmsRaised - gatewayBefore.alarmsRaised;
    const all = await newAlarms(ctx, known);
    // The handler was at zero and was started during the scenario: the first alarm raised woke
    // it (the others found it running). Decided on the alarms' own order, not on which of two
    // pollers answered first, which a loaded host reorders.
    const firstRaised = [...stored].sort((x, y) => (x['raisedAt'] as number) - (y['raisedAt'] as number))[0]?.['id'];
    const reports: AlarmReport[] = stored.map((a) => {
      return {
        id: a['id'] as string,
        kind: a['kind'] as string,
        tag: a['tag'] as string,
        raisedAt: a['raisedAt'] as number,
        handledMs: a['handledMs'] as number | null,
        wokeFromZero: !handlerWasRunning && handlerStartedAt !== null && a['id'] === firstRaised,
        recorded: all.filter((x) => x['id'] === a['id']).length,
      };
    });
    const kinds = reports.map((a) => `${a.kind}:${a.tag}`).sort();
    ctx.check(JSON.stringify(kinds) === JSON.stringify(['frozen:temp', 'high-high:level2', 'high:level2']), `alarms were ${kinds.join(', ')}`);
    ctx.check(raisedByGateway === all.filter((a) => a['kind'] !== null).length, `gateway raised ${raisedByGateway} alarms, historian recorded ${all.length}`);
    for (const a of reports) {
      ctx.check(a.recorded === 1, `alarm ${a.id} recorded ${a.recorded} times`);
      ctx.check(a.handledMs !== null && a.handledMs <= ctx.ms(BOUNDS.alarmHandledMs), `alarm ${a.kind} ${a.tag} handled after ${a.handledMs} ms (bound ${ctx.ms(BOUNDS.alarmHandledMs)})`);
    }
    ctx.check(reports.some((a) => a.wokeFromZero), 'no alarm woke the handler from zero');
    // After the faults end the level comes back under high.
    await ctx.waitFor('level2 back under the high limit', async () => (await ctx.trace((await ctx.plantNow()) - 500)).every((p) => p.truth.level2 < LEVEL_LIMITS.high), ctx.ms(15_000));
    const pending = await getJson<{ pending: number }>(`${ctx.target.historianUrl}/alarms/pending`);
    ctx.check(pending.pending === 0, `${pending.pending} alarms still pending`);
    Object.assign(ctx.details, { raisedByGateway, handlerStartedAfterMs: handlerStartedAt === null ? null : handlerStartedAt - wallStart });
    // This scenario drives level2 over high-high on purpose; the limit is the tank's top (no overflow).
    return { alarms: reports, levelLimit: TANK_HEIGHT_M };
  } finally {
    clearInterval(watch);
  }
};

const brokerRestart: ScenarioBody = async (ctx) => {
  const active = await ctx.activeController();
  const lastSeq = (await ctx.plantState()).seq;
  const historianBefore = await ctx.historian();
  let restartedAt = 0;
  const markerValue = 0.777;
  const killedAt = await ctx.plantNow();
  await ctx.target.restartBroker(async () => {
    await sleep(ctx.ms(500));
    // Published while the broker is down: mqtt.js holds it and sends it after reconnecting.
    await ctx.operatorCommand('heater', markerValue, lastSeq);
    await sleep(ctx.ms(1000));
  });
  restartedAt = Date.now();
  const resumed = await ctx.waitFor(
    'readings to reach the historian again',
    async () => ((await ctx.historian()).readings > historianBefore.readings + 5 ? Date.now() : undefined),
    ctx.ms(15_000),
  );
  const marker = await ctx.waitFor(
    'the command published during the outage to reach the plant',
    async () => commandsIn(await ctx.trace(killedAt)).find((c) => c.source === 'operator' && c.value === markerValue),
    ctx.ms(15_000),
  ).catch(() => undefined);
  ctx.check(marker !== undefined, 'the QoS 1 command published while the broker was down never reached the plant');
  const readingsResumeMs = resumed - restartedAt;
  ctx.check(readingsResumeMs <= ctx.ms(BOUNDS.readingsResumeMs), `readings resumed ${readingsResumeMs} ms after the restart (bound ${ctx.ms(BOUNDS.readingsResumeMs)})`);
  await sleep(ctx.ms(2000));
  const now = await ctx.plantNow();
  const recent = commandsIn(await ctx.trace(now - 1000)).filter((c) => c.source === 'controller');
  ctx.check(recent.length > 0, 'no controller commands reach the plant after the broker restart');
  const activeAfter = await ctx.activeController();
  ctx.check(activeAfter.name === active.name && activeAfter.status.epoch === active.status.epoch, `the broker restart caused a failover (${active.name}@${active.status.epoch} -> ${activeAfter.name}@${activeAfter.status.epoch})`);
  Object.assign(ctx.details, { readingsResumeMs, markerApplied: marker !== undefined, markerLatencyFromKillMs: marker ? Math.round(marker.t - killedAt) : null });
  return {};
};

const badMessages: ScenarioBody = async (ctx, t0) => {
  const controllersBefore = await ctx.controllers();
  const gatewayBefore = await ctx.gateway();
  const historianBefore = await ctx.historian();
  const seq = (await ctx.plantState()).seq;
  const valid = { seq, epoch: 0, source: 'operator', by: 'scenario', sentAt: Date.now() };
  const bad: Array<[string, string, boolean]> = [
    ['control/setpoints/level1', 'not json', true],
    ['control/setpoints/level1', JSON.stringify({ value: 'high' }), true],
    ['control/setpoints/level1', JSON.stringify({ value: 99 }), true],
    ['control/setpoints/temp', JSON.stringify({}), true],
    ['control/setpoints/pressure', JSON.stringify({ value: 1 }), true],
    ['plant/commands/inflow1', JSON.stringify({ ...valid, value: 5 }), false],
    ['plant/commands/inflow1', 'garbage', false],
    ['plant/commands/inflow1', JSON.stringify({ value: 0.5 }), false],
    ['plant/commands/valve9', JSON.stringify({ ...valid, value: 0.5 }), false],
    ['alarms/raised', JSON.stringify({ id: 'half-an-alarm' }), false],
    ['alarms/raised', 'nope', false],
  ];
  for (const [topic, payload, retain] of bad) await ctx.publishRaw(topic, payload, retain);
  await sleep(ctx.ms(1500));
  const controllersAfter = await ctx.controllers();
  const gatewayAfter = await ctx.gateway();
  const historianAfter = await ctx.historian();
  for (const [name, status] of Object.entries(controllersAfter)) {
    const before = controllersBefore[name];
    ctx.check(JSON.stringify(status.setpoints) === JSON.stringify(before?.setpoints), `controller ${name} setpoints changed to ${JSON.stringify(status.setpoints)}`);
    ctx.check(status.rejected - (before?.rejected ?? 0) === 5, `controller ${name} rejected ${status.rejected - (before?.rejected ?? 0)} setpoint messages (expected 5)`);
  }
  ctx.check(gatewayAfter.rejected - gatewayBefore.rejected === 4, `gateway rejected ${gatewayAfter.rejected - gatewayBefore.rejected} commands (expected 4)`);
  ctx.check(historianAfter.rejected - historianBefore.rejected === 6, `historian rejected ${historianAfter.rejected - historianBefore.rejected} messages (expected 6)`);
  ctx.check(historianAfter.alarms === historianBefore.alarms, `historian alarms changed ${historianBefore.alarms} -> ${historianAfter.alarms}`);
  const foreign = commandsIn(await ctx.trace(t0)).filter((c) => c.source !== 'controller');
  ctx.check(foreign.length === 0, `${foreign.length} non-controller commands reached the plant`);

  // Positive controls: a valid setpoint and a valid operator command do get through.
  await ctx.setSetpoint('level1', 1.1);
  const marker = 0.321;
  await ctx.operatorCommand('heater', marker, (await ctx.plantState()).seq);
  const changed = await ctx
    .waitFor('both controllers to take the valid setpoint', async () => Object.values(await ctx.controllers()).every((s) => s.setpoints.level1 === 1.1), ctx.ms(3000))
    .then(() => true, () => false);
  ctx.check(changed, 'a valid setpoint (positive control) was not taken');
  const applied = await ctx
    .waitFor('the valid operator command at the plant', async () => commandsIn(await ctx.trace(t0)).some((c) => c.source === 'operator' && c.value === marker), ctx.ms(3000))
    .then(() => true, () => false);
  ctx.check(applied, 'a valid operator command (positive control) did not reach the plant');
  await ctx.setSetpoint('level1', DEFAULT_SETPOINTS.level1);
  Object.assign(ctx.details, {
    badMessages: bad.length,
    controllerRejected: Object.values(controllersAfter).map((s, i) => s.rejected - (Object.values(controllersBefore)[i]?.rejected ?? 0)).join('/'),
    gatewayRejected: gatewayAfter.rejected - gatewayBefore.rejected,
    historianRejected: historianAfter.rejected - historianBefore.rejected,
    validSetpointTaken: changed,
    validCommandApplied: applied,
  });
  return {};
};

const BODIES: Record<ScenarioName, ScenarioBody> = {
  normal,
  'setpoint-step': setpointStep,
  'controller-failover': controllerFailover,
  alarm,
  'broker-restart': brokerRestart,
  'bad-messages': badMessages,
};

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function round1(value: number | undefined): number {
  return Math.round((value ?? 0) * 10) / 10;
}
