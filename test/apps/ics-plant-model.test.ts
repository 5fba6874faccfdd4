import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HttpError } from '@uigniter-demo/common/http-error';
import { decodeCommand, decodeReadings, encodeCommand, encodeReadings, commandAddress } from '@uigniter-demo/ics-common/modbus-map';
import { parseCommand, parseSetpoint } from '@uigniter-demo/ics-common/messages';
import { parseFault, type Fault } from '@uigniter-demo/ics-plant/faults';
import { ProcessModel, type Sample } from '@uigniter-demo/ics-plant/process-model';
import { PiController } from '@uigniter-demo/ics-controller/pi-controller';

/** Runs the model for `steps` with a fixed command script and fault script. */
function run(seed: number, steps: number, faults: Array<[number, Fault]> = []): Sample[] {
  const model = new ProcessModel(seed);
  const samples: Sample[] = [];
  for (let i = 0; i < steps; i++) {
    for (const [at, fault] of faults) if (at === i) model.inject(fault);
    model.command('inflow1', i < 100 ? 0.8 : 0.4);
    model.command('inflow2', 0.5);
    model.command('heater', 0.5);
    samples.push(model.advance());
  }
  return samples;
}

describe('ics plant model', () => {
  it('is deterministic: same seed and commands give the same trajectory; another seed does not', () => {
    const a = run(7, 300, [[50, { name: 'outflow-disturbance', tank: 1, factor: 0.5, durationMs: 2000 }]]);
    const b = run(7, 300, [[50, { name: 'outflow-disturbance', tank: 1, factor: 0.5, durationMs: 2000 }]]);
    assert.deepEqual(a, b);
    const c = run(8, 300, [[50, { name: 'outflow-disturbance', tank: 1, factor: 0.5, durationMs: 2000 }]]);
    assert.notDeepEqual(
      a.map((s) => s.level1),
      c.map((s) => s.level1),
      'a different seed changes the sensor noise',
    );
    // Same noise, same physics: the true levels do not depend on the seed.
    assert.deepEqual(
      a.map((s) => s.truth.level1),
      c.map((s) => s.truth.level1),
    );
  });

  it('moves the levels by mass balance: more inflow raises, a bigger outflow lowers', () => {
    const open = new ProcessModel(1);
    const base = new ProcessModel(1);
    const drained = new ProcessModel(1);
    drained.inject({ name: 'outflow-disturbance', tank: 1, factor: 1 });
    for (let i = 0; i < 50; i++) {
      open.command('inflow1', 1);
      base.command('inflow1', 0.5);
      drained.command('inflow1', 0.5);
      open.advance();
      base.advance();
      drained.advance();
    }
    const level = (m: ProcessModel): number => m.advance().truth.level1;
    const [o, b, d] = [level(open), level(base), level(drained)];
    assert.ok(o > b && b > d, `open ${o} > base ${b} > drained ${d}`);
  });

  it('applies faults: a frozen sensor repeats its value, a stuck valve ignores commands, a spike offsets one reading', () => {
    const model = new ProcessModel(3);
    model.command('inflow1', 0.5);
    for (let i = 0; i < 10; i++) model.advance();
    model.inject({ name: 'frozen-sensor', sensor: 'level1', durationMs: 500 });
    model.inject({ name: 'stuck-valve', valve: 'inflow1', position: 0.9, durationMs: 2000 });
    const frozen = [model.advance(), model.advance(), model.advance()];
    assert.equal(new Set(frozen.map((s) => s.level1)).size, 1, 'frozen readings are identical');
    assert.equal(new Set(frozen.map((s) => s.level2)).size, 3, 'positive control: an unfrozen sensor varies');
    model.command('inflow1', 0);
    for (let i = 0; i < 5; i++) model.advance();
    assert.equal(model.advance().inflow1, 0.9, 'the stuck valve stays at 0.9 whatever is commanded');
    const before = model.advance();
    model.inject({ name: 'sensor-spike', sensor: 'level2', delta: 0.5, durationMs: 100 });
    const spiked = model.advance();
    assert.ok(spiked.level2 - before.level2 > 0.4, `spike seen: ${before.level2} -> ${spiked.level2}`);
    assert.ok(Math.abs(spiked.truth.level2 - before.truth.level2) < 0.05, 'a spike is in the sensor, not the tank');
  });

  it('validates fault requests, naming the field at fault', () => {
    const field = (body: Record<string, unknown>): string | undefined => {
      try {
        parseFault(body);
        return undefined;
      } catch (err) {
        assert.ok(err instanceof HttpError);
        assert.equal(err.status, 400);
        return err.field;
      }
    };
    assert.equal(field({}), 'name');
    assert.equal(field({ name: 'meteor' }), 'name');
    assert.equal(field({ name: 'outflow-disturbance', tank: 3, factor: 1 }), 'tank');
    assert.equal(field({ name: 'outflow-disturbance', tank: 1, factor: 'x' }), 'factor');
    assert.equal(field({ name: 'stuck-valve', valve: 'drain' }), 'valve');
    assert.equal(field({ name: 'stuck-valve', valve: 'inflow1', position: 2 }), 'position');
    assert.equal(field({ name: 'frozen-sensor', sensor: 'level1', durationMs: -5 }), 'durationMs');
    assert.equal(field({ name: 'sensor-spike', sensor: 'level9', delta: 1 }), 'sensor');
    assert.equal(field({ name: 'sensor-spike', sensor: 'temp', delta: 1 }), undefined);
  });

  it('round-trips readings and commands through the Modbus register map', () => {
    const reading = { seq: 70_001, sampleTime: 123_456.7, level1: 1.234, level2: 0.5, temp: 45.6, inflow1: 0.5, inflow2: 1, heater: 0 };
    const decoded = decodeReadings(encodeReadings(reading));
    assert.equal(decoded.seq, 70_001);
    assert.equal(decoded.sampleTime, 123_457);
    assert.equal(decoded.level1, 1.234);
    assert.equal(decoded.temp, 45.6);
    const regs = encodeCommand({ value: 0.42, seq: 70_001, epoch: 3, source: 'controller' });
    assert.deepEqual(decodeCommand(commandAddress('heater'), regs), { actuator: 'heater', value: 0.42, seq: 70_001, epoch: 3, source: 'controller' });
    assert.equal(typeof decodeCommand(commandAddress('heater') + 1, regs), 'string', 'a misaligned block is refused');
    assert.equal(typeof decodeCommand(commandAddress('heater'), regs.slice(0, 3)), 'string', 'a short block is refused');
  });

  it('rejects malformed and out-of-range messages with a reason', () => {
    assert.equal(parseSetpoint('level1', '{"value": 1.2}').ok, true);
    const high = parseSetpoint('level1', '{"value": 1.9}');
    assert.ok(!high.ok && /out of range/.test(high.reason));
    assert.equal(parseSetpoint('temp', 'nope').ok, false);
    assert.equal(parseCommand(JSON.stringify({ value: 0.5, seq: 1, epoch: 1, source: 'controller', by: 'a', sentAt: 1 })).ok, true);
    assert.equal(parseCommand(JSON.stringify({ value: 1.5, seq: 1, epoch: 1, source: 'controller', by: 'a', sentAt: 1 })).ok, false);
    assert.equal(parseCommand(JSON.stringify({ value: 0.5, seq: 1, epoch: 1, source: 'robot', by: 'a', sentAt: 1 })).ok, false);
  });

  it('closes the level loop on the model: a PI controller settles a step within 8 s without large overshoot', () => {
    const model = new ProcessModel(11, {}, { level1: 1, level2: 1, temp: 45 });
    const pi = new PiController('level1');
    let sample = model.advance();
    const levels: number[] = [];
    for (let i = 0; i < 150; i++) {
      model.command('inflow1', pi.update(1.3, sample.level1, 0.1));
      sample = model.advance();
      levels.push(sample.truth.level1);
    }
    const max = Math.max(...levels);
    assert.ok(max < 1.3 + 0.25 * 0.3, `overshoot: peak ${max}`);
    assert.ok(levels.slice(80).every((l) => Math.abs(l - 1.3) < 0.05), 'within ±0.05 m after 8 s');
  });
});
