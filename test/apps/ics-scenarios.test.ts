import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { startIcsCluster, type IcsCluster } from '@uigniter-demo/ics-native';
import { runScenario, BOUNDS, type ScenarioName, type ScenarioReport } from '@uigniter-demo/ics-scenarios';
import { call, Cleanup, tempDir, waitFor, type ErrorReply } from './helpers.js';

interface ControllerStatus {
  role: 'active' | 'standby';
  epoch: number;
}

interface TraceCommand {
  t: number;
  epoch: number;
  source: string;
}

describe('ics scenarios (native)', () => {
  const cleanup = new Cleanup();
  let cluster: IcsCluster;
  after(() => cleanup.run());
  before(async () => {
    const dataDir = await tempDir(cleanup, 'ics-scenarios-');
    cluster = await startIcsCluster({ dataDir });
    cleanup.after(() => cluster.stop());
  });

  async function scenario(t: TestContext, name: ScenarioName): Promise<ScenarioReport> {
    const report = await runScenario(name, cluster.scenarioTarget(1));
    t.diagnostic(JSON.stringify(report));
    assert.ok(report.passed, `${name} failed: ${report.failures.join('; ')}\n${cluster.logs(15)}`);
    return report;
  }

  it('plant API: /state has levels, valves, temperature and limits; bad /faults and /trace input is a 400 naming the field', async () => {
    const state = await call<{ levels: Record<string, number>; valves: Record<string, number>; temp: number; limits: { level: Record<string, number> } }>(
      `${cluster.urls.plant}/state`,
    );
    assert.equal(state.status, 200);
    assert.deepEqual(Object.keys(state.body.levels).sort(), ['level1', 'level2']);
    assert.deepEqual(Object.keys(state.body.valves).sort(), ['heater', 'inflow1', 'inflow2']);
    assert.equal(typeof state.body.temp, 'number');
    assert.deepEqual(state.body.limits.level, { low: 0.2, high: 1.6, highHigh: 1.8, tankHeight: 2.5 });
    const post = (body: unknown): Promise<{ status: number; body: ErrorReply }> =>
      call<ErrorReply>(`${cluster.urls.plant}/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const bad = await post({ name: 'stuck-valve', valve: 'drain' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, 'valve');
    assert.equal((await post({ name: 'outflow-disturbance', tank: 1 })).body.error.field, 'factor');
    assert.equal((await call<ErrorReply>(`${cluster.urls.plant}/trace?since=soon`)).body.error.field, 'since');
    // Control: a valid fault is accepted (and cleared at once).
    assert.equal((await post({ name: 'sensor-spike', sensor: 'temp', delta: 0.1, durationMs: 100 })).status, 201);
    assert.equal((await post({ name: 'clear' })).status, 201);
  });

  it('normal: every loop holds its setpoint and meets the deadline', async (t) => {
    const report = await scenario(t, 'normal');
    assert.ok(report.loopLatencyMs.count > 100, 'latency samples were taken');
    assert.ok(report.loopLatencyMs.p99 <= report.deadlineMs);
  });

  it('setpoint-step: a level and a temperature step, then an outflow disturbance, settle within the stated bounds', async (t) => {
    const report = await scenario(t, 'setpoint-step');
    assert.ok((report.details['level1SettleMs'] as number) <= BOUNDS.stepSettleMs);
    assert.ok(report.maxLevel > 1.25, 'the level really moved to the new setpoint');
  });

  it('bad-messages: malformed, unknown and out-of-range messages change nothing; valid ones do (control)', async (t) => {
    const report = await scenario(t, 'bad-messages');
    assert.equal(report.details['validSetpointTaken'], true);
    assert.equal(report.details['validCommandApplied'], true);
  });

  it('alarm: the handler is woken from zero, each alarm handled within the deadline and recorded once', async (t) => {
    const report = await scenario(t, 'alarm');
    assert.equal(report.alarms.length, 3);
    assert.ok(report.alarms.some((a) => a.wokeFromZero));
    assert.ok(report.maxLevel > 1.8, 'the fault really drove the level over high-high');
    assert.ok((cluster.scaler?.decisions.length ?? 0) >= 1, 'the scaler started the handler');
  });

  it('broker-restart: a QoS 1 command published during the outage is applied and readings resume', async (t) => {
    const report = await scenario(t, 'broker-restart');
    assert.equal(report.details['markerApplied'], true);
  });

  it('controller-failover: the standby takes over within the bound, the old active returns as standby', async (t) => {
    const report = await scenario(t, 'controller-failover');
    assert.ok(report.failoverMs !== null && report.failoverMs <= BOUNDS.failoverMs);
  });

  it('a paused active that comes back steps down, and its stale-epoch commands never reach the plant', async (t) => {
    const statuses = async (): Promise<Record<string, ControllerStatus>> => ({
      a: (await call<ControllerStatus>(`${cluster.urls['controller-a']}/status`)).body,
      b: (await call<ControllerStatus>(`${cluster.urls['controller-b']}/status`)).body,
    });
    const initial = await waitFor('one active controller', async () => {
      const s = await statuses();
      const active = Object.entries(s).filter(([, v]) => v.role === 'active');
      return active.length === 1 ? (active[0] as [string, ControllerStatus]) : undefined;
    });
    const [oldName, oldStatus] = initial;
    const otherName = oldName === 'a' ? 'b' : 'a';
    const service = cluster.service(oldName === 'a' ? 'controller-a' : 'controller-b');
    const plantNow = (await call<{ now: number }>(`${cluster.urls.plant}/state`)).body.now;
    service.signal('SIGSTOP');
    let resumed = false;
    t.after(() => {
      if (!resumed) service.signal('SIGCONT');
    });
    const takeover = await waitFor(
      'the other controller to take over',
      async () => {
        const s = (await call<ControllerStatus>(`${cluster.urls[otherName === 'a' ? 'controller-a' : 'controller-b']}/status`)).body;
        return s.role === 'active' && s.epoch > oldStatus.epoch ? s : undefined;
      },
      5000,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    service.signal('SIGCONT');
    resumed = true;
    await waitFor('the old active to step down', async () => (await statuses())[oldName]?.role === 'standby', 5000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const trace = (await call<{ entries: Array<{ commands: TraceCommand[] }> }>(`${cluster.urls.plant}/trace?since=${plantNow - 2000}`)).body.entries;
    const commands = trace.flatMap((e) => e.commands).filter((c) => c.source === 'controller');
    const firstNew = commands.find((c) => c.epoch === takeover.epoch);
    assert.ok(firstNew, 'the new active moved the plant');
    assert.ok(commands.some((c) => c.epoch === oldStatus.epoch && c.t < firstNew.t), 'control: the old active moved the plant before its pause');
    const stale = commands.filter((c) => c.t > firstNew.t && c.epoch < takeover.epoch);
    assert.deepEqual(stale, [], 'no old-epoch command after the takeover');
    const gateway = (await call<{ rejections: Array<{ reason: string }> }>(`${cluster.urls.iogateway}/status`)).body;
    t.diagnostic(`gateway refused ${gateway.rejections.filter((r) => r.reason.startsWith('stale epoch')).length} stale-epoch commands`);
    assert.equal((await statuses())[otherName]?.role, 'active');
  });
});
