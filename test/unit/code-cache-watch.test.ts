import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { VmRecord, VmState } from '../../src/core/models.js';
import type { CodeCacheStats } from '../../src/core/ports.js';
import { CodeCacheWatch } from '../../src/core/supervision/code-cache-watch.js';
import type { VmRecords } from '../../src/core/supervision/vm-records.js';

const vm = (name: string, state: VmState, pid: number): VmRecord => ({ id: name, name, state, pid }) as unknown as VmRecord;
const MIN = 60_000;

describe('the code cache watch', () => {
  it('warns of a busy running VM whose cache filled up twice since the last reading, once per 10 min; not of one flush, a new VMM, an idle or a paused VM', async () => {
    let fleet: VmRecord[] = [];
    const records = Object.assign(new EventEmitter(), { list: () => fleet }) as unknown as VmRecords;
    const flushes = new Map<string, number>();
    const idle = new Set<string>(['idle']);
    const reads: string[] = [];
    const read = async (v: VmRecord): Promise<CodeCacheStats | null> => {
      reads.push(v.name);
      const n = flushes.get(`${v.name}:${v.pid}`);
      return n === undefined ? null : { boundMiB: 32, usedMiB: 20, flushes: n };
    };
    const warned: string[] = [];
    const watch = new CodeCacheWatch(records, read, (v) => !idle.has(v.name), (v, n, overMs, bound) => warned.push(`${v.name} ${n} ${overMs} ${bound}`), MIN);

    const busy = vm('busy', 'running', 1);
    fleet = [busy, vm('quiet', 'running', 2), vm('paused', 'paused', 3), vm('kvm', 'running', 4), vm('idle', 'running', 5)];
    // A cold boot's flushes are what the first reading finds: no warning.
    flushes.set('busy:1', 3).set('quiet:2', 2).set('paused:3', 0).set('idle:5', 0);
    await watch.check(0);
    assert.deepEqual(warned, []);
    assert.deepEqual(reads, ['busy', 'quiet', 'kvm'], 'paused and idle VMs are not read');

    flushes.set('busy:1', 5).set('quiet:2', 3).set('idle:5', 9);
    await watch.check(MIN);
    assert.deepEqual(warned, ['busy 2 60000 32'], 'two flushes in a minute warn; one does not; an idle VM is not read');

    // Still thrashing every minute: warned again only 10 min after the last warning.
    for (let m = 2; m <= 10; m++) {
      flushes.set('busy:1', 5 + 3 * m);
      await watch.check(m * MIN);
    }
    assert.equal(warned.length, 1);
    flushes.set('busy:1', 50);
    await watch.check(11 * MIN);
    assert.deepEqual(warned.slice(1), ['busy 15 60000 32']);

    // A reading long after the last (the VM was idle meanwhile) is a new start, not a rate.
    idle.delete('idle');
    await watch.check(12 * MIN);
    flushes.set('busy:1', 99);
    await watch.check(40 * MIN);
    assert.equal(warned.length, 2, 'flushes over 28 min are no sign of thrashing now');

    // A new VMM of the VM starts its own count: its boot flushes are no warning.
    fleet = [vm('busy', 'running', 7)];
    flushes.set('busy:7', 4);
    await watch.check(41 * MIN);
    assert.equal(warned.length, 2);
  });
});
