import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Plan, type Step } from '../../src/core/plan.js';

function recorder(): { log: string[]; step: (name: string, fail?: boolean) => Step<object> } {
  const log: string[] = [];
  return {
    log,
    step: (name, fail = false) => ({
      name,
      async run() {
        if (fail) throw new Error(`${name} broke`);
        log.push(`do ${name}`);
      },
      async undo(_ctx, reason) {
        log.push(`undo ${name} (${reason})`);
      },
    }),
  };
}

describe('plans of undoable steps', () => {
  it('undoes the done steps in reverse when one fails, and rethrows', async () => {
    const r = recorder();
    const plan = new Plan({});
    await assert.rejects(plan.run([r.step('a'), r.step('b'), r.step('c', true), r.step('d')]), /c broke/);
    assert.deepEqual(r.log, ['do a', 'do b', 'undo b (rollback)', 'undo a (rollback)']);
  });

  it('rolls back steps of earlier runs of the same plan too', async () => {
    const r = recorder();
    const plan = new Plan({});
    await plan.run([r.step('launch')]);
    await assert.rejects(plan.run([r.step('ready', true)]));
    assert.deepEqual(r.log, ['do launch', 'undo launch (rollback)']);
  });

  it('counts a failing afterStep hook as a failure after the step ran: its own undo runs', async () => {
    const r = recorder();
    const plan = new Plan({}, { afterStep: (n) => { if (n === 'b') throw new Error('injected'); } });
    await assert.rejects(plan.run([r.step('a'), r.step('b'), r.step('c')]), /injected/);
    assert.deepEqual(r.log, ['do a', 'do b', 'undo b (rollback)', 'undo a (rollback)']);
  });

  it('halts with the reason given, reports undo errors without stopping', async () => {
    const r = recorder();
    const errors: string[] = [];
    const bad: Step<object> = { name: 'bad', run: async () => undefined, undo: async () => { throw new Error('undo broke'); } };
    const plan = new Plan({}, { onUndoError: (n, e) => errors.push(`${n}: ${(e as Error).message}`) });
    await plan.run([r.step('a'), bad, r.step('c')]);
    await plan.unwind('halt');
    assert.deepEqual(r.log, ['do a', 'do c', 'undo c (halt)', 'undo a (halt)']);
    assert.deepEqual(errors, ['bad: undo broke']);
    assert.deepEqual(plan.completed, []);
  });

  it('adopted plans undo steps another process ran', async () => {
    const r = recorder();
    const plan = Plan.adopted({}, [r.step('tap'), r.step('vmm')]);
    await plan.unwind('halt');
    assert.deepEqual(r.log, ['undo vmm (halt)', 'undo tap (halt)']);
  });
});
