import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createProgress } from '../../src/util/progress.js';

function sink(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const stream = { isTTY, write: (s: string) => ((text += s), true) } as unknown as NodeJS.WriteStream;
  return { stream, text: () => text };
}

describe('progress display', () => {
  it('prints plain lines with the stage and every 10% when not a terminal', () => {
    let t = 0;
    const s = sink(false);
    const p = createProgress({ label: 'kernel', stream: s.stream, now: () => t });
    p.stage('compile', 100);
    for (let i = 1; i <= 100; i++) {
      t += 1000;
      p.advance(i);
    }
    p.finish('done');
    const lines = s.text().trim().split('\n');
    assert.equal(lines[0], '[kernel] compile (00:00 elapsed)');
    assert.equal(lines.filter((l) => /%$/.test(l)).length, 9);
    assert.ok(!s.text().includes('\r'));
    assert.match(lines.at(-1)!, /^\[kernel\] done \(01:40\)$/);
  });

  it('redraws one line with a bar on a terminal', () => {
    let t = 0;
    const s = sink(true);
    const p = createProgress({ label: 'kernel', stream: s.stream, now: () => t });
    p.stage('compile', 10);
    t = 65_000;
    p.advance(5);
    assert.match(s.text(), /\r\x1b\[2K\[kernel\] compile {6}01:05 \[#{14}-{14}\] 50%/);
  });
});
