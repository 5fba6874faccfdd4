import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { alignedDelay } from '../../src/util/aligned-delay.js';

describe('alignedDelay', () => {
  it('waits at least the delay and ends on the shared grid, so timers set apart expire together', async () => {
    const ends: number[] = [];
    for (let i = 0; i < 3; i++) {
      const d = alignedDelay(2000, 1000);
      const end = performance.now() + d;
      assert.ok(d >= 2000 && d < 3000 + 1, `delay ${d}`);
      assert.ok(Math.abs(end / 1000 - Math.round(end / 1000)) < 0.001, `ends on a whole second: ${end}`);
      ends.push(Math.round(end));
      await new Promise((r) => setTimeout(r, 5));
    }
    // Three timers set 5 ms apart (unless a grid line fell between them) end at one instant.
    assert.ok(new Set(ends).size <= 2, `ends ${ends.join(', ')}`);
  });
});
