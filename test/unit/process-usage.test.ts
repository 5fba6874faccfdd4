import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cpuPercent, sampleProcess } from '../../src/util/process-usage.js';

describe('process usage from /proc', () => {
  it('reads a busy process climbing and an idle one flat; a gone one is null', async () => {
    const busy = spawn(process.execPath, ['-e', 'for (;;) {}']);
    const idle = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const [b0, i0] = [await sampleProcess(busy.pid!), await sampleProcess(idle.pid!)];
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, 1000));
      const [b1, i1] = [await sampleProcess(busy.pid!), await sampleProcess(idle.pid!)];
      const ms = performance.now() - t0;
      assert.ok(b0 && b1 && i0 && i1);
      assert.ok(b1.rssBytes > 10 * 1024 * 1024, `a node process holds more than 10 MiB (${b1.rssBytes})`);
      const busyPct = cpuPercent(b0, b1, ms);
      const idlePct = cpuPercent(i0, i1, ms);
      assert.ok(busyPct > 40, `a spinning process uses most of a core (${busyPct.toFixed(1)}%)`);
      assert.ok(idlePct < 10, `a sleeping one almost none (${idlePct.toFixed(1)}%)`);
    } finally {
      busy.kill('SIGKILL');
      idle.kill('SIGKILL');
    }
    await new Promise((r) => busy.once('exit', r).once('error', r));
    assert.equal(await sampleProcess(busy.pid!), null);
  });

  it('a command name with spaces and parentheses does not shift the fields', async () => {
    // /proc/PID/stat's second field is "(comm)", the executable's file name: it may hold ") (".
    const dir = await mkdtemp(join(tmpdir(), 'uigniter-comm-'));
    const exe = join(dir, 'a) (b c');
    await copyFile('/bin/sleep', exe);
    await chmod(exe, 0o755);
    const child = spawn(exe, ['5']);
    try {
      await new Promise((r) => setTimeout(r, 200));
      assert.match(await readFile(`/proc/${child.pid}/stat`, 'utf8'), /\(a\) \(b c\)/, 'positive control: the name is in the stat line');
      const s = await sampleProcess(child.pid!);
      assert.ok(s && Number.isFinite(s.cpuTicks) && s.cpuTicks >= 0 && s.rssBytes > 0 && s.rssBytes < 64 * 1024 * 1024, JSON.stringify(s));
    } finally {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});
