import { applyFilter } from '@uigniter-demo/worker/filter';
import { PNG } from 'pngjs';

/**
 * Compares a result with the filter run on the host, pixel by pixel. Returns null when they
 * match, else where the first difference is.
 */
export function comparePixels(input: Buffer, result: Buffer): string | null {
  const want = PNG.sync.read(applyFilter(input));
  const got = PNG.sync.read(result);
  if (want.width !== got.width || want.height !== got.height) {
    return `size ${got.width}x${got.height}, expected ${want.width}x${want.height}`;
  }
  for (let i = 0; i < want.data.length; i++) {
    if (want.data[i] !== got.data[i]) {
      const px = Math.floor(i / 4);
      return `pixel (${px % want.width}, ${Math.floor(px / want.width)}) channel ${i % 4}: ${got.data[i]}, expected ${want.data[i]}`;
    }
  }
  return null;
}
