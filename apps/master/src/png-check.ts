import { HttpError } from '@uigniter-demo/common/http-error';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export interface PngInfo {
  width: number;
  height: number;
}

function notPng(message: string): HttpError {
  return new HttpError(415, 'not_png', message);
}

/**
 * Reads the size from the signature and IHDR chunk without decoding, so an
 * image whose pixels would not fit a worker's memory is refused cheaply.
 */
export function readPngHeader(data: Buffer, maxPixels: number): PngInfo {
  if (data.length < 8 || !data.subarray(0, 8).equals(PNG_SIGNATURE)) {
    throw notPng('the upload is not a PNG (bad signature)');
  }
  if (data.length < 33 || data.readUInt32BE(8) !== 13 || data.toString('latin1', 12, 16) !== 'IHDR') {
    throw notPng('the PNG has no valid IHDR chunk');
  }
  const width = data.readUInt32BE(16);
  const height = data.readUInt32BE(20);
  if (width === 0 || height === 0) throw notPng(`the PNG has an invalid size ${width}x${height}`);
  if (width * height > maxPixels) {
    throw new HttpError(413, 'too_many_pixels', `${width}x${height} exceeds the limit of ${maxPixels} pixels`);
  }
  return { width, height };
}

type PngModule = typeof import('pngjs');
let pngjs: Promise<PngModule> | undefined;

/**
 * Accepts only a PNG that pngjs can fully decode (the library the workers
 * use), so a task never carries an input every worker would choke on.
 * pngjs is loaded on first use to keep the service's start-up short.
 */
export async function checkPng(data: Buffer, maxPixels: number): Promise<PngInfo> {
  const info = readPngHeader(data, maxPixels);
  pngjs ??= import('pngjs');
  const { PNG } = await pngjs;
  try {
    PNG.sync.read(data);
  } catch (err) {
    throw notPng(`the PNG cannot be decoded: ${err instanceof Error ? err.message : String(err)}`);
  }
  return info;
}
