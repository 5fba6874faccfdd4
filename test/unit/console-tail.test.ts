import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConsoleTail } from '../../src/guest/console-tail.js';

let dir = '';
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Collects a tail's lines; `next(n)` resolves once n lines in all have come (10 s at most). */
function collect(tail: ConsoleTail): { lines: string[]; next: (n: number) => Promise<string[]> } {
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  tail.on('line', (l) => {
    lines.push(l);
    for (const w of waiters.splice(0)) w();
  });
  const next = async (n: number): Promise<string[]> => {
    const deadline = Date.now() + 10_000;
    while (lines.length < n) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} lines; have ${JSON.stringify(lines)}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, 100);
        waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
    return lines.slice(0, n);
  };
  return { lines, next };
}

describe('the console tail', () => {
  it('follows appends line by line, across quiet polls, a truncation and its own rotation', async () => {
    dir = await mkdtemp(join(tmpdir(), 'uigniter-tail-'));
    const path = join(dir, 'console.log');
    await writeFile(path, 'first\n');
    const tail = new ConsoleTail(path, { pollMs: 20, maxPollMs: 40, rotateAtBytes: 64 }).start();
    const { next } = collect(tail);
    try {
      assert.deepEqual(await next(1), ['first']);
      // Quiet polls (nothing appended) come and go; what is appended after them is read.
      await new Promise((r) => setTimeout(r, 150));
      await appendFile(path, 'second\nthi');
      assert.deepEqual(await next(2), ['first', 'second']);
      await appendFile(path, 'rd\n');
      assert.deepEqual(await next(3), ['first', 'second', 'third']);
      // Past 64 bytes read, the tail copies the file to .1 and empties it.
      await appendFile(path, `${'x'.repeat(60)}\n`);
      assert.equal((await next(4))[3], 'x'.repeat(60));
      for (let i = 0; i < 100 && (await stat(path)).size > 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal((await stat(path)).size, 0, 'rotated: the file is empty');
      assert.match(await readFile(`${path}.1`, 'utf8'), /^first\nsecond\nthird\nx+\n$/);
      await appendFile(path, 'after rotation\n');
      assert.equal((await next(5))[4], 'after rotation');
      // Emptied by someone else and written again: read from its start.
      await writeFile(path, '');
      await new Promise((r) => setTimeout(r, 100));
      await writeFile(path, 'new start\n');
      assert.equal((await next(6))[5], 'new start');
    } finally {
      await tail.stop();
    }
  });
});
