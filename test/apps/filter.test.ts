import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PNG } from 'pngjs';
import { makeSamplePng } from '@uigniter-demo/common/sample-png';
import { applyFilter, decodeRgba, filterPixels } from '@uigniter-demo/worker/filter';

/** A 3x2 RGBA image chosen so the expected output can be worked out by hand. */
const TINY_WIDTH = 3;
const TINY_HEIGHT = 2;
// prettier-ignore
const TINY = new Uint8Array([
  255, 0, 0, 255,    0, 255, 0, 200,      0, 0, 255, 100,
  10, 10, 10, 0,     200, 200, 200, 255,  255, 255, 255, 50,
]);
/*
 * gray = (299R + 587G + 114B + 500) / 1000:
 *   red   (76245+500)/1000 = 76    green (149685+500)/1000 = 150   blue (29070+500)/1000 = 29
 *   10    (10000+500)/1000 = 10    200   200                       white 255
 * 3-wide sums with clamped edges:
 *   row 0: 76+76+150 = 302   76+150+29 = 255   150+29+29 = 208
 *   row 1: 10+10+200 = 220   10+200+255 = 465  200+255+255 = 710
 * 3x3 sums (row 0 counts twice for y=0, row 1 twice for y=1), then (sum+4)/9:
 *   y=0: 824 -> 92   975 -> 108   1126 -> 125
 *   y=1: 742 -> 82   1185 -> 132  1628 -> 181
 */
// prettier-ignore
const TINY_EXPECTED = new Uint8Array([
  92, 92, 92, 255,   108, 108, 108, 200,  125, 125, 125, 100,
  82, 82, 82, 0,     132, 132, 132, 255,  181, 181, 181, 50,
]);

function encode(rgba: Uint8Array, width: number, height: number, colorType: 0 | 2 | 6 = 6): Buffer {
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba);
  return PNG.sync.write(png, { colorType, inputColorType: 6 });
}

describe('filter', () => {
  it('filterPixels matches the hand-computed 3x2 image', () => {
    assert.deepEqual(filterPixels(TINY, TINY_WIDTH, TINY_HEIGHT), TINY_EXPECTED);
  });

  it('filterPixels on a 1x1 image blurs the pixel with itself', () => {
    // gray = (29900 + 29350 + 22800 + 500) / 1000 = 82; (9*82 + 4) / 9 = 82
    assert.deepEqual(filterPixels(new Uint8Array([100, 50, 200, 7]), 1, 1), new Uint8Array([82, 82, 82, 7]));
  });

  it('rounds the gray half up and the blur to nearest', () => {
    // 299*1 + 587*1 + 114*1 = 1000 -> (1000+500)/1000 = 1; a lone 1 among 0s blurs to (1+4)/9 = 0
    const rgba = new Uint8Array(3 * 3 * 4);
    rgba[4 * 4] = 1;
    rgba[4 * 4 + 1] = 1;
    rgba[4 * 4 + 2] = 1;
    const out = filterPixels(rgba, 3, 3);
    assert.deepEqual([...out.filter((_, i) => i % 4 === 0)], [0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // five 255-gray pixels out of nine: (5*255 + 4)/9 = 142 at the centre
    const bright = new Uint8Array(3 * 3 * 4).fill(0);
    for (const p of [1, 3, 4, 5, 7]) bright.fill(255, p * 4, p * 4 + 3);
    assert.equal(filterPixels(bright, 3, 3)[4 * 4], 142);
  });

  it('rejects a buffer of the wrong length or size', () => {
    assert.throws(() => filterPixels(new Uint8Array(10), 3, 2), RangeError);
    assert.throws(() => filterPixels(new Uint8Array(0), 0, 0), RangeError);
  });

  it('applyFilter decodes, filters and encodes RGBA', () => {
    const out = applyFilter(encode(TINY, TINY_WIDTH, TINY_HEIGHT));
    const decoded = PNG.sync.read(out);
    assert.equal(decoded.width, TINY_WIDTH);
    assert.equal(decoded.height, TINY_HEIGHT);
    assert.deepEqual(new Uint8Array(decoded.data), TINY_EXPECTED);
  });

  it('applyFilter accepts RGB and grayscale PNGs (alpha becomes opaque)', () => {
    const opaque = new Uint8Array(TINY);
    for (let i = 3; i < opaque.length; i += 4) opaque[i] = 255;
    const expected = new Uint8Array(TINY_EXPECTED);
    for (let i = 3; i < expected.length; i += 4) expected[i] = 255;
    assert.deepEqual(decodeRgba(applyFilter(encode(opaque, TINY_WIDTH, TINY_HEIGHT, 2))).data, expected);

    // A 2x1 grayscale PNG with grays 90 and 180 (each a gray RGB pixel, so its y is itself):
    // x=0 sums (90+90+180)*3 = 1080 -> 120; x=1 sums (90+180+180)*3 = 1350 -> 150.
    const grayOnly = decodeRgba(applyFilter(encode(new Uint8Array([90, 90, 90, 255, 180, 180, 180, 255]), 2, 1, 0)));
    assert.deepEqual([...grayOnly.data], [120, 120, 120, 255, 150, 150, 150, 255]);
  });

  it('is deterministic and keeps the size of a generated sample', () => {
    const input = makeSamplePng(42, 61, 37);
    const a = applyFilter(input);
    const b = applyFilter(input);
    assert.deepEqual(a, b);
    const decoded = decodeRgba(a);
    assert.equal(decoded.width, 61);
    assert.equal(decoded.height, 37);
    const source = decodeRgba(input);
    for (let i = 0; i < decoded.data.length; i += 4) {
      assert.equal(decoded.data[i], decoded.data[i + 1]);
      assert.equal(decoded.data[i], decoded.data[i + 2]);
      assert.equal(decoded.data[i + 3], source.data[i + 3], `alpha of pixel ${i / 4}`);
    }
  });

  it('makeSamplePng is deterministic per seed', () => {
    assert.deepEqual(makeSamplePng(7, 20, 10), makeSamplePng(7, 20, 10));
    assert.notDeepEqual(makeSamplePng(7, 20, 10), makeSamplePng(8, 20, 10));
    const alphas = new Set<number>();
    const { data } = decodeRgba(makeSamplePng(7, 20, 10));
    for (let i = 3; i < data.length; i += 4) alphas.add(data[i] as number);
    assert.ok(alphas.size > 10, 'the sample has varied alpha');
  });
});
