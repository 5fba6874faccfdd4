import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CommandHelper, commandHelperInUse, useCommandHelper } from '../../src/util/command-helper.js';
import { CommandError, run, spawnHere } from '../../src/util/exec.js';
import { processAlive } from '../../src/util/process.js';

/** The parent pid of a command `run` spawns: who forked it. */
async function spawnedBy(): Promise<number> {
  return Number((await run('sh', ['-c', 'echo $PPID'])).stdout.trim());
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('command helper (host commands spawned outside the daemon)', () => {
  it('routes run() through the helper while in use, and back to this process after the last release', async () => {
    assert.equal(await spawnedBy(), process.pid, 'control: without the helper, this process spawns');
    const a = useCommandHelper();
    const b = useCommandHelper();
    const helper = commandHelperInUse();
    assert.ok(helper);
    const pid = helper.pid();
    assert.notEqual(pid, process.pid);
    assert.equal(await spawnedBy(), pid, 'the helper spawns');
    a();
    a(); // a release counts once
    assert.equal(await spawnedBy(), pid, 'still in use by the second user');
    b();
    assert.equal(commandHelperInUse(), null);
    assert.equal(await spawnedBy(), process.pid);
    for (let i = 0; i < 50 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(processAlive(pid), false, 'the released helper exits');
  });

  it('gives the same results and errors as spawning here: input, output, cwd, env, exit codes, missing commands', async () => {
    const h = new CommandHelper();
    const dir = await mkdtemp(join(tmpdir(), 'uigniter-helper-'));
    try {
      for (const [label, go] of [
        ['here', spawnHere],
        ['helper', h.run.bind(h)],
      ] as const) {
        assert.equal((await go('cat', [], { input: 'line one\nline two\n' })).stdout, 'line one\nline two\n', label);
        assert.equal((await go('cat', [], { input: Buffer.from([0x61, 0x00, 0x62]) })).stdout, 'a\u0000b', label);
        assert.equal((await go('pwd', [], { cwd: dir })).stdout.trim(), dir, label);
        assert.equal((await go('sh', ['-c', 'echo "$X"'], { env: { PATH: process.env.PATH, X: 'from env' } })).stdout, 'from env\n', label);
        const out = await go('sh', ['-c', 'echo out; echo err >&2']);
        assert.deepEqual(out, { stdout: 'out\n', stderr: 'err\n' }, label);
        const failed = await rejection(go('sh', ['-c', 'echo why >&2; exit 3']));
        assert.ok(failed instanceof CommandError, label);
        assert.equal(failed.exitCode, 3, label);
        assert.equal(failed.message, 'sh -c echo why >&2; exit 3 failed (exit 3): why', label);
        const missing = await rejection(go('uigniter-no-such-command', ['x']));
        assert.ok(missing instanceof CommandError, label);
        assert.match(missing.message, /^uigniter-no-such-command \(not installed\?\) failed/, label);
      }
    } finally {
      h.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('kills a command at its timeout', async () => {
    const h = new CommandHelper();
    try {
      const t0 = performance.now();
      const e = await rejection(h.run('sleep', ['30'], { timeoutMs: 200 }));
      assert.ok(e instanceof CommandError);
      assert.equal(e.exitCode, null, 'ended by a signal');
      assert.ok(performance.now() - t0 < 5000);
    } finally {
      h.close();
    }
  });

  it('a helper that dies fails its commands in flight, and the next command starts a new one', async () => {
    const h = new CommandHelper();
    try {
      const first = h.pid();
      const inFlight = h.run('sleep', ['30']);
      await new Promise((r) => setTimeout(r, 200));
      process.kill(first, 'SIGKILL');
      const e = await rejection(inFlight);
      assert.match(e.message, new RegExp(`command helper \\(pid ${first}\\) exited \\(SIGKILL\\)`));
      assert.equal((await h.run('echo', ['again'])).stdout, 'again\n');
      assert.notEqual(h.pid(), first);
    } finally {
      h.close();
    }
  });

  it('closing it rejects what is in flight and what comes after', async () => {
    const h = new CommandHelper();
    const pid = h.pid();
    const inFlight = h.run('sleep', ['30']);
    await new Promise((r) => setTimeout(r, 100));
    h.close();
    assert.match((await rejection(inFlight)).message, /command helper: closed/);
    assert.match((await rejection(h.run('true', []))).message, /command helper: closed/);
    for (let i = 0; i < 50 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(processAlive(pid), false);
  });
});
