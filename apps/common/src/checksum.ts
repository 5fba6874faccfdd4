import { createHash } from 'node:crypto';

export const CHECKSUM_HEADER = 'x-checksum-sha256';

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
