import { PNG } from 'pngjs';

/** A small, fast PRNG (mulberry32): the same seed must give the same image everywhere. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * A deterministic RGBA test image: colour gradients, a seeded disc, noise
 * and varying alpha, so a filter bug in any channel or at any edge shows.
 */
export function makeSamplePng(seed: number, width: number, height: number): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`invalid sample size ${width}x${height}`);
  }
  const next = prng(seed);
  const png = new PNG({ width, height, colorType: 6 });
  const cx = next() % width;
  const cy = next() % height;
  const radius = 1 + (next() % Math.max(1, Math.min(width, height)));
  const tint = next() & 0xff;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      const noise = next() & 0x3f;
      const inDisc = (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2;
      png.data[i] = (Math.floor((x * 255) / Math.max(1, width - 1)) + noise) & 0xff;
      png.data[i + 1] = (Math.floor((y * 255) / Math.max(1, height - 1)) + (inDisc ? 128 : 0)) & 0xff;
      png.data[i + 2] = (tint + ((x ^ y) & 0xff) + noise) & 0xff;
      png.data[i + 3] = inDisc ? 255 : 128 + (next() & 0x7f);
    }
  }
  return PNG.sync.write(png, { colorType: 6 });
}
