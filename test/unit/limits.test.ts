import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { UigniterError } from '../../src/core/errors.js';
import type { VmRecord, VmState } from '../../src/core/models.js';
import { checkLimits, type ManagerLimits, type UsageView } from '../../src/core/supervision/limits.js';
import { UsageMeter, type ProcessSampler, type VmUsage } from '../../src/core/supervision/usage-meter.js';
import type { VmRecords } from '../../src/core/supervision/vm-records.js';
import { processPssBytes } from '../../src/util/process-usage.js';

let nextPid = 1000;
function vm(state: VmState, memMiB = 128, vcpus = 1): VmRecord {
  const id = `vm${nextPid}`;
  return { id, name: id, state, pid: nextPid++, spec: { memMiB, vcpus } } as unknown as VmRecord;
}

const limits: ManagerLimits = { maxVms: 100, maxVcpus: 4, maxMemMiB: 1000, minFreeMiB: 500 };
const limited = (resource: string) => (e: unknown) => e instanceof UigniterError && e.code === 'limit_exceeded' && e.field === resource;

function view(usage: Map<string, VmUsage>, hostAvailableMiB: number | null = null): UsageView {
  return { usage: (v) => usage.get(v.id) ?? null, hostAvailableMiB: () => hostAvailableMiB };
}

describe('limits count what VMs use', () => {
  it('running VMs count their measured memory, booting ones their full size', () => {
    const running = Array.from({ length: 7 }, () => vm('running'));
    const measured = new Map(running.map((v) => [v.id, { pssMiB: 100, cpuPct: 0.3, growthMiB: 0, at: 0 }]));
    const cpus = { ...limits, maxVcpus: 64 };
    // 7 x 128 = 896 by size: a 128 MiB newcomer would not fit in 1000; by use (700) it does.
    assert.throws(() => checkLimits(running, cpus, 1, 128, true), limited('memMiB'));
    checkLimits(running, cpus, 1, 128, true, view(measured));
    // A booting VM has touched little yet, but it will: it counts its 256 MiB.
    const booting = vm('booting', 256);
    assert.throws(() => checkLimits([...running, booting], cpus, 1, 128, true, view(measured)), (e: unknown) => {
      assert.ok(limited('memMiB')(e));
      assert.match((e as Error).message, /limit of 1000 MiB: its 8 VMs use 956 MiB/);
      return true;
    });
  });

  it('idle running VMs count the cores they burn, paused ones none, booting ones their vCPUs', () => {
    const idle = Array.from({ length: 20 }, () => vm('running'));
    const measured = new Map<string, VmUsage>(idle.map((v) => [v.id, { pssMiB: 20, cpuPct: 0.5, growthMiB: 0, at: 0 }]));
    // 20 idle VMs at 0.5% of a core each: 0.1 of a vCPU in use out of 4.
    checkLimits(idle, limits, 2, 64, true, view(measured));
    const paused = [vm('paused', 64, 4), vm('paused', 64, 4)];
    checkLimits([...idle, ...paused], limits, 2, 64, true, view(measured));
    const booting = [vm('booting', 64, 2)];
    assert.throws(() => checkLimits([...idle, ...booting], limits, 2, 64, true, view(measured)), limited('vcpus'));
    // Measured once only (no CPU figure yet): it counts its vCPUs.
    const fresh = vm('running', 64, 2);
    measured.set(fresh.id, { pssMiB: 50, cpuPct: null, growthMiB: 0, at: 0 });
    assert.throws(() => checkLimits([...idle, fresh], limits, 3, 64, true, view(measured)), limited('vcpus'));
  });

  it("keeps the host's free memory: a VM that would leave less than minFreeMiB is refused", () => {
    const running = [vm('running')];
    const measured = new Map(running.map((v) => [v.id, { pssMiB: 10, cpuPct: 0, growthMiB: 0, at: 0 }]));
    checkLimits(running, limits, 1, 128, true, view(measured, 700));
    assert.throws(() => checkLimits(running, limits, 1, 128, true, view(measured, 600)), (e: unknown) => {
      assert.ok(limited('memMiB')(e));
      assert.match((e as Error).message, /less than the 500 MiB it keeps free \(600 MiB available/);
      return true;
    });
    // A VM still booting has not touched its memory yet: it is promised out of what is available.
    assert.throws(() => checkLimits([...running, vm('booting', 128)], limits, 1, 128, true, view(measured, 700)), limited('memMiB'));
  });

  it('running VMs keep room for their VMMs to grow, against the limit and the host floor', () => {
    const running = Array.from({ length: 4 }, () => vm('running'));
    const still = new Map(running.map((v) => [v.id, { pssMiB: 100, cpuPct: 0, growthMiB: 0, at: 0 }]));
    const growing = new Map(running.map((v) => [v.id, { pssMiB: 100, cpuPct: 0, growthMiB: 30, at: 0 }]));
    // The limit: 4 x 100 + 128 fits in 600; with 30 MiB of room each (520 + 128) it does not.
    const six = { ...limits, maxMemMiB: 600 };
    checkLimits(running, six, 1, 128, true, view(still));
    assert.throws(() => checkLimits(running, six, 1, 128, true, view(growing)), (e: unknown) => {
      assert.ok(limited('memMiB')(e));
      assert.match((e as Error).message, /its 4 VMs use 520 MiB \(measured for running VMs with room for their VMMs to grow/);
      return true;
    });
    // The host floor: 700 available - 128 leaves 572 >= 500; minus 4 x 30 of room it leaves 452.
    checkLimits(running, limits, 1, 128, true, view(still, 700));
    assert.throws(() => checkLimits(running, limits, 1, 128, true, view(growing, 700)), (e: unknown) => {
      assert.ok(limited('memMiB')(e));
      assert.match((e as Error).message, /700 MiB available, 0 MiB of it promised to VMs that are booting, 120 MiB kept for running VMMs to grow\)/);
      return true;
    });
  });

  it('the VM count is a limit of its own', () => {
    const few: ManagerLimits = { ...limits, maxVms: 2 };
    assert.throws(() => checkLimits([vm('stopped'), vm('stopped')], few, 1, 64, true), /limited to 2 VMs/);
    checkLimits([vm('stopped'), vm('stopped')], few, 1, 64, false);
  });
});

describe('the usage meter', () => {
  it('measures a VM when asked, takes a CPU figure from two samples, forgets a VMM that changed', async () => {
    const records = Object.assign(new EventEmitter(), { list: (): VmRecord[] => [] }) as unknown as VmRecords;
    const MiB = 1024 * 1024;
    let ticks = 0;
    let rss = 150 * MiB;
    let pss = 100 * MiB;
    let pssReads = 0;
    const sampler: ProcessSampler = { sample: async () => ({ cpuTicks: ticks, rssBytes: rss }), pss: async () => (pssReads++, pss) };
    let room: number | null = 8 * MiB;
    let roomReads = 0;
    const meter = new UsageMeter(records, sampler, async () => (roomReads++, room));
    const v = vm('running');
    assert.equal(meter.get(v), null);
    await meter.measure(v);
    assert.deepEqual({ ...meter.get(v), at: 0 }, { pssMiB: 100, cpuPct: null, growthMiB: 8, at: 0 });
    // Too soon for a CPU figure: the CPU stays unknown.
    ticks = 50;
    await meter.measure(v);
    assert.equal(meter.get(v)?.cpuPct, null);
    await new Promise((r) => setTimeout(r, 450));
    ticks = 60;
    await meter.measure(v);
    const pct = meter.get(v)!.cpuPct!;
    // 60 ticks (0.6 s) of CPU over ~0.45 s (more if the timer fired late): about a core and a third.
    assert.ok(pct > 60 && pct < 140, `cpu ${pct}`);
    assert.equal(meter.get({ ...v, pid: v.pid! + 1 }), null, 'a new VMM of the VM is not the one measured');
    // PSS is read again only once the RSS has moved by a MiB: an idle VMM costs stat and statm.
    pss = 120 * MiB;
    rss += 512 * 1024;
    await meter.measure(v);
    assert.deepEqual([pssReads, meter.get(v)?.pssMiB], [1, 100], 'RSS moved by half a MiB: PSS not read');
    rss += 512 * 1024;
    await meter.measure(v);
    assert.deepEqual([pssReads, meter.get(v)?.pssMiB], [2, 120], 'RSS moved by a MiB: PSS read');
    // The room is read once a minute at most, not at every measurement (it walks the whole smaps).
    room = 2 * MiB;
    rss += 4 * MiB;
    await meter.measure(v);
    assert.deepEqual([roomReads, meter.get(v)?.growthMiB], [1, 8]);
    // A new VMM of the VM is read at once; one whose room cannot be read (it is gone) is not
    // measured.
    const next = { ...v, pid: v.pid! + 1 };
    await meter.measure(next);
    assert.deepEqual([roomReads, meter.get(next)?.growthMiB], [2, 2]);
    room = null;
    const gone = { ...v, pid: v.pid! + 2 };
    await meter.measure(gone);
    assert.deepEqual([roomReads, meter.get(gone)], [3, null]);
    records.emit('removed', v);
    assert.equal(meter.get(v), null);
  });

  it("reads a real process's PSS", async () => {
    const pss = await processPssBytes(process.pid);
    assert.ok(pss !== null && pss > 10 * 1024 * 1024 && pss < 2048 * 1024 * 1024, `pss ${pss}`);
    assert.equal(await processPssBytes(2 ** 22 + 1), null);
  });
});
