import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiError, type VmView } from '../../src/client/client.js';
import { buildFixture, guestGet, startTestDaemon, type TestDaemon } from '../daemon-harness.js';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { codeCacheResidentKiB } from '../../src/drivers/qemu/code-cache.js';
import { basename } from 'node:path';
import { Paths } from '../../src/util/paths.js';
import { cli, FIXTURES, qemuProcesses } from '../helpers.js';

/** The memory limit of this daemon, MiB, and the size of each VM asked for. */
const MAX_MEM = 1024;
const VM_MEM = 256;

describe('a host filled to its memory limit', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon({ args: ['--max-mem', String(MAX_MEM)] });
    await buildFixture(d.home, join(FIXTURES, 'hello'), 'hello');
  });
  after(async () => {
    await d?.destroy();
  });

  it('fits more VMs than their sizes add up to, then answers 429 naming memory, and the VMs keep answering', async () => {
    const started: VmView[] = [];
    let refused: ApiError | null = null;
    // Sizes alone allow 1024 / 256 = 4; each idle VM holds less than its size, and a VM is
    // measured before its create answers, so the next create counts what it really holds.
    for (let i = 0; i < 12 && !refused; i++) {
      try {
        started.push(await d.client.run({ image: 'hello', name: `fill${i}`, memMiB: VM_MEM, boot: 'cold' }));
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        refused = e;
      }
    }
    assert.ok(refused, `a create was refused within 12 VMs (${started.length} started)`);
    assert.equal(refused.status, 429);
    assert.equal(refused.code, 'limit_exceeded');
    assert.equal(refused.field, 'memMiB');
    assert.match(refused.message, new RegExp(`^${VM_MEM} MiB more memory would exceed the daemon's limit of ${MAX_MEM} MiB: its ${started.length} VMs use \\d+ MiB \\(measured for running VMs`));
    const used = Number(/use (\d+) MiB/.exec(refused.message)![1]);
    assert.ok(used + VM_MEM > MAX_MEM && used <= MAX_MEM, `the figure is what made it refuse (${used} MiB)`);
    assert.ok(started.length > MAX_MEM / VM_MEM, `more VMs than sizes allow fit: ${started.length} of ${VM_MEM} MiB in ${MAX_MEM} MiB`);
    // The refused create left nothing: the list holds only the VMs that were started, each
    // with its own QEMU, and each of them still answers.
    assert.deepEqual((await d.client.list()).map((v) => v.name).sort(), started.map((v) => v.name).sort());
    assert.equal((await qemuProcesses(d.home)).length, started.length);
    assert.equal(d.leases().length, started.length);
    for (const vm of started) {
      const hi = await guestGet<{ hostname: string }>(vm.ip!, '/');
      assert.equal(hi.hostname, vm.name);
    }
    // Once VMs are gone, one that fits in what they freed is accepted again.
    for (const vm of started.splice(-2)) await d.client.remove(vm.name, { force: true });
    const again = await d.client.run({ image: 'hello', name: 'again', memMiB: 128, boot: 'cold' });
    assert.equal((await guestGet<{ hostname: string }>(again.ip!, '/')).hostname, 'again');
  });

  it("sizes a VM's translation cache as asked, and counts the room it has left as memory in use", async () => {
    for (const vm of await d.client.list()) await d.client.remove(vm.name, { force: true });
    // An idle VM fills about 100 MiB of a cache it may grow to 1 GiB: the rest is room its
    // VMM may still take without asking, and it counts against the 1024 MiB limit.
    const big = await d.client.run({ image: 'hello', name: 'bigcache', memMiB: 128, boot: 'cold', codeCacheMiB: 1024 });
    assert.equal(big.codeCacheMiB, 1024);
    const smaps = await readFile(`/proc/${big.pid}/smaps`, 'utf8');
    const resident = codeCacheResidentKiB(smaps, 1024);
    assert.ok(resident !== null && resident > 0, `QEMU mapped a 1 GiB cache (holding ${resident} KiB)`);
    assert.equal(codeCacheResidentKiB(smaps, 32), null, 'and not the default 32 MiB one');
    // Its boot's code fits: QEMU says so (info jit), and the stats show what the boot took.
    const bigStats = await d.client.stats('bigcache');
    assert.equal(bigStats.codeCache?.boundMiB, 1024);
    assert.equal(bigStats.codeCache?.flushes, 0, 'a 1 GiB cache never filled');
    const bootCode = bigStats.codeCache?.usedMiB ?? 0;
    assert.ok(bootCode > 32, `a cold boot translates more than the default 32 MiB holds (${bootCode} MiB)`);
    const refused = await d.client.run({ image: 'hello', name: 'next', memMiB: 128, boot: 'cold' }).then(() => null, (e: unknown) => e);
    assert.ok(refused instanceof ApiError && refused.status === 429 && refused.field === 'memMiB', `refused: ${String(refused)}`);
    const used = Number(/its 1 VM uses (\d+) MiB/.exec(refused.message)?.[1]);
    assert.ok(used > 1024 - 128, `the one VM counts its room to grow: ${used} MiB (${Math.round(resident / 1024)} MiB of cache held)`);
    // Positive control: without it, the same create fits.
    await d.client.remove('bigcache', { force: true });
    const next = await d.client.run({ image: 'hello', name: 'next', memMiB: 128, boot: 'cold' });
    assert.equal(next.codeCacheMiB, null, 'the default cache');
    assert.equal((await guestGet<{ hostname: string }>(next.ip!, '/')).hostname, 'next');
    // The same boot in the default 32 MiB: the cache filled and was emptied on the way.
    const nextStats = await d.client.stats('next');
    assert.equal(nextStats.codeCache?.boundMiB, 32);
    assert.ok((nextStats.codeCache?.flushes ?? 0) >= 1, `the 32 MiB cache was flushed: ${JSON.stringify(nextStats.codeCache)}`);
    assert.ok((nextStats.codeCache?.usedMiB ?? 99) <= 32);
    await d.client.stop('next');
    const stopped = await d.client.stats('next').then(() => null, (e: unknown) => e);
    assert.ok(stopped instanceof ApiError && stopped.status === 409 && /stopped/.test(stopped.message), `a stopped VM has no stats: ${String(stopped)}`);
    await d.client.start('next');
  });

  it("leaves none of its VMs' cgroups behind once cleaned up", async () => {
    const instance = basename(new Paths(d.home).memory);
    const dirs = ['/sys/fs/cgroup/memory/uigniter', '/sys/fs/cgroup/cpu/uigniter', '/sys/fs/cgroup/uigniter']
      .map((root) => join(root, instance))
      .filter((dir) => existsSync(dir));
    assert.ok(dirs.length > 0, `the running VMs' groups live under ${instance}`);
    await d.kill('SIGTERM');
    const r = await cli(d.home, ['daemon', '--cleanup', '--netns', d.netns, '--bridge', d.bridge, '--subnet', d.subnet, '--link-net', d.linkNet]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await qemuProcesses(d.home)).length, 0);
    assert.deepEqual(dirs.filter((dir) => existsSync(dir)), [], 'the instance directories are gone');
  });
});
