import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_SETPOINTS } from '@uigniter-demo/ics-common/process-limits';
import { BOUNDS, runScenario, type ScenarioName, type ScenarioReport, type ScenarioTarget } from '@uigniter-demo/ics-scenarios';
import { ALARM_SERVICE, buildIcsImages, deployIcs, ICS_VMS, removeIcs } from '../../src/demo/industrial/ics-deployment.js';
import { icsVmTarget } from '../../src/demo/industrial/ics-vm-target.js';
import { VM_TIMINGS } from '../../src/demo/industrial/industrial-demo.js';
import { startTestDaemon, type TestDaemon } from '../daemon-harness.js';
import type { PlantStats } from '../../src/api/live/plant-stats.js';
import { awaitEvent, ROOT } from '../helpers.js';

/**
 * The industrial example on real guests: plant, broker, I/O gateway, two controllers and
 * historian as microVMs, the alarm handler a service at zero replicas. Each scenario drives
 * the plant and asserts on its trajectory (the engine's checks, in `failures`), and each
 * test adds what its scenario is about.
 */
describe('industrial example as microVMs', () => {
  let d: TestDaemon;
  let target: ScenarioTarget;
  const log = (l: string): void => void process.stderr.write(`  | ${l}\n`);
  const scenario = async (name: ScenarioName): Promise<ScenarioReport> => {
    const r = await runScenario(name, target);
    log(`${name}: loop p50 ${r.loopLatencyMs.p50} ms, p99 ${r.loopLatencyMs.p99} ms, ${r.deadlineMisses} misses, failover ${r.failoverMs} ms, alarms ${JSON.stringify(r.alarms.map((a) => [a.kind, a.handledMs, a.wokeFromZero]))}`);
    if (r.deadlineMisses > 0) log(`${name}: misses at ${String(r.details['missesAt'])}`);
    assert.deepEqual(r.failures, [], `${name}: the plant's trajectory met every bound`);
    assert.ok(r.loopLatencyMs.count > 0, 'the plant measured loops');
    return r;
  };

  before(async () => {
    d = await startTestDaemon();
    await buildIcsImages({ client: d.client, appsDir: join(ROOT, 'apps'), log });
    const { timeFactor, ...timings } = VM_TIMINGS;
    const { addresses } = await deployIcs({ client: d.client, appsDir: join(ROOT, 'apps'), log, ...timings });
    target = icsVmTarget(d.client, addresses, timeFactor, log);
  });
  after(async () => {
    if (d) await removeIcs(d.client, { volumes: true }).catch(() => undefined);
    await d?.destroy();
  });

  it('normal operation: the levels and the temperature settle at their setpoints and stay there', async () => {
    const r = await scenario('normal');
    assert.equal(r.withinLimits, true);
    assert.ok(Number(r.details['maxDeviationLevel1']) <= BOUNDS.levelToleranceM);
  });

  it("the dashboard's live feed follows the plant: levels, the active controller, its setpoints", async () => {
    const seen = await awaitEvent(`${d.url}/events`, (e) => (e.event === 'plant' ? (e.data as PlantStats) : null), 20_000);
    const state = (await (await fetch(`${target.plantUrl}/state`)).json()) as { truth: { level1: number } };
    assert.ok(Math.abs(seen.plant.levels.level1 - state.truth.level1) < 0.1, `level1 ${seen.plant.levels.level1} ~ ${state.truth.level1}`);
    assert.deepEqual(seen.controllers.filter((c) => c.role === 'active').length, 1, 'one active controller');
    assert.ok(seen.controllers.every((c) => c.reachable));
    assert.deepEqual(seen.setpoints, DEFAULT_SETPOINTS, 'the setpoints the normal scenario set');
    assert.ok(seen.alarms !== null, 'the historian answered');
  });

  it('a setpoint step and a disturbance: overshoot and settling within the bounds', async () => {
    const r = await scenario('setpoint-step');
    assert.ok(Number(r.details['level1Overshoot']) <= BOUNDS.stepOvershoot);
    assert.notEqual(r.details['disturbanceSettleMs'], null);
  });

  it("the active controller's VM SIGKILLed: the standby takes over in time, the level stays under high-high", async () => {
    const r = await scenario('controller-failover');
    assert.ok(r.failoverMs !== null && r.failoverMs <= BOUNDS.failoverMs * target.timeFactor, `failover ${r.failoverMs} ms`);
    assert.notEqual(r.details['newActive'], r.details['killed'], 'the other controller took over');
    assert.equal(r.withinLimits, true);
    const states = await Promise.all(['controller-a', 'controller-b'].map(async (n) => (await d.client.get(n)).state));
    assert.deepEqual(states, ['running', 'running'], 'the killed controller was started again (as the standby)');
  });

  it('alarms: the handler, at zero replicas before, is woken and handles each within the deadline; each is recorded once', async () => {
    assert.equal((await d.client.getService(ALARM_SERVICE)).status.running, 0, 'positive control: the handler is at zero');
    const r = await scenario('alarm');
    assert.equal(r.alarms.length, 3);
    assert.ok(r.alarms.some((a) => a.wokeFromZero), 'one alarm woke the handler from zero');
    for (const a of r.alarms) assert.equal(a.recorded, 1, `alarm ${a.id} recorded once`);
  });

  it('the broker VM restarted: QoS 1 commands are not lost and readings resume', async () => {
    const r = await scenario('broker-restart');
    assert.equal(r.details['markerApplied'], true, 'the command published while the broker was down reached the plant');
    assert.equal((await d.client.get('broker')).state, 'running');
    assert.equal(r.withinLimits, true);
  });

  it('bad messages are rejected with a reason and change nothing', async () => {
    await scenario('bad-messages');
    const names = (await d.client.list()).map((v) => v.name);
    for (const n of ICS_VMS) assert.ok(names.includes(n), `${n} still runs`);
  });
});
