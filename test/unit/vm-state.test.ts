import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UigniterError } from '../../src/core/errors.js';
import type { VmRecord, VmState } from '../../src/core/models.js';
import { canTransition, isActive, transition } from '../../src/core/vm-state.js';

const vm = (state: VmState): VmRecord => ({ id: 'x', name: 'x', state, stateChangedAt: 't0', updatedAt: 't0' }) as unknown as VmRecord;

describe('VM lifecycle state machine', () => {
  it('allows the lifecycle and nothing else', () => {
    const legal: [VmState, VmState][] = [
      ['creating', 'booting'], ['creating', 'failed'], ['booting', 'running'], ['booting', 'failed'], ['booting', 'stopping'],
      ['running', 'stopping'], ['running', 'stopped'], ['running', 'failed'], ['stopping', 'stopped'], ['stopped', 'booting'], ['failed', 'booting'],
      ['running', 'paused'], ['paused', 'running'], ['paused', 'stopping'], ['stopping', 'suspended'], ['suspended', 'booting'], ['suspended', 'stopped'],
    ];
    for (const [a, b] of legal) assert.ok(canTransition(a, b), `${a} -> ${b}`);
    for (const [a, b] of [['stopped', 'running'], ['creating', 'running'], ['failed', 'running'], ['stopping', 'running'], ['stopped', 'stopping'],
      ['suspended', 'running'], ['stopped', 'paused'], ['booting', 'paused'], ['running', 'suspended'], ['stopped', 'suspended']] as [VmState, VmState][]) {
      assert.ok(!canTransition(a, b), `${a} -> ${b} must be refused`);
    }
  });

  it('stamps the change time and refuses illegal moves with a conflict', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const r = transition(vm('running'), 'stopping', now, { pid: 5 });
    assert.equal(r.state, 'stopping');
    assert.equal(r.stateChangedAt, now.toISOString());
    assert.equal(r.pid, 5);
    assert.throws(() => transition(vm('stopped'), 'running', now), (e: unknown) => e instanceof UigniterError && e.code === 'conflict');
    assert.equal(transition(vm('running'), 'running', now).stateChangedAt, 't0', 'no change, no new change time');
  });

  it('knows which states have a VMM up', () => {
    const all: VmState[] = ['creating', 'booting', 'running', 'paused', 'stopping', 'suspended', 'stopped', 'failed'];
    assert.deepEqual(all.filter(isActive), ['booting', 'running', 'paused', 'stopping'], 'a paused VM holds its VMM; a suspended one has none');
  });
});
