import { PNG } from 'pngjs';

/**
 * Grayscale then a 3x3 box blur of the gray, alpha kept. Integer arithmetic
 * only, so results are bit-identical on every machine: tests compare images
 * processed inside VMs with this function run on the host.
 *
 *   gray  = (299*R + 587*G + 114*B + 500) / 1000          (integer division)
 *   out   = (sum of the 3x3 gray neighbourhood + 4) / 9    (edges clamped)
 *
 * `rgba` holds width*height pixels of 4 bytes; the result has the same layout.
 */
export function filterPixels(rgba: Uint8Array, width: number, height: number): Uint8Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`invalid image size ${width}x${height}`);
  }
  const pixels = width * height;
  if (rgba.length !== pixels * 4) {
    throw new RangeError(`expected ${pixels * 4} bytes for ${width}x${height} RGBA, got ${rgba.length}`);
  }

  const gray = new Uint8Array(pixels);
  for (let p = 0, i = 0; p < pixels; p++, i += 4) {
    const weighted = 299 * (rgba[i] as number) + 587 * (rgba[i + 1] as number) + 114 * (rgba[i + 2] as number);
    gray[p] = Math.floor((weighted + 500) / 1000);
  }

  // The 3x3 sum is separable: sum three clamped columns per row first, then
  // three clamped rows of those sums. At most 9*255, so 16 bits suffice.
  const rowSums = new Uint16Array(pixels);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const left = x > 0 ? x - 1 : 0;
      const right = x < width - 1 ? x + 1 : width - 1;
      rowSums[row + x] = (gray[row + left] as number) + (gray[row + x] as number) + (gray[row + right] as number);
    }
  }

  const out = new Uint8Array(pixels * 4);
  for (let y = 0; y < height; y++) {
    const above = (y > 0 ? y - 1 : 0) * width;
    const row = y * width;
    const below = (y < height - 1 ? y + 1 : height - 1) * width;
    for (let x = 0; x < width; x++) {
      const sum = (rowSums[above + x] as number) + (rowSums[row + x] as number) + (rowSums[below + x] as number);
      const value = Math.floor((sum + 4) / 9);
      const i = (row + x) * 4;
      out[i] = value;
      out[i + 1] = value;
      out[i + 2] = value;
      out[i + 3] = rgba[i + 3] as number;
    }
  }
  return out;
}

/** Decodes a PNG (any colour type or depth pngjs reads), filters it and encodes RGBA 8-bit. */
export function applyFilter(png: Buffer): Buffer {
  const decoded = PNG.sync.read(png);
  const filtered = filterPixels(decoded.data, decoded.width, decoded.height);
  const output = new PNG({ width: decoded.width, height: decoded.height, colorType: 6 });
  output.data = Buffer.from(filtered.buffer, filtered.byteOffset, filtered.byteLength);
  return PNG.sync.write(output, { colorType: 6 });
}

/** Decodes a PNG to width, height and 8-bit RGBA pixels (for comparing results). */
export function decodeRgba(png: Buffer): { width: number; height: number; data: Uint8Array } {
  const decoded = PNG.sync.read(png);
  return { width: decoded.width, height: decoded.height, data: new Uint8Array(decoded.data) };
}
