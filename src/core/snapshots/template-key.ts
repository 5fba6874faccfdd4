import { createHash } from 'node:crypto';
import type { ImageManifest, VmSpec } from '../models.js';

/**
 * What makes two VMs interchangeable right after boot: the same image, kernel and initrd,
 * the same vCPUs and memory, the same environment and arguments, the same driver, the
 * same root (read-only or not: a clone keeps the mounts of its snapshot). Name, ports and
 * stop timeout are the clone's own.
 */
export function templateKey(image: ImageManifest, spec: VmSpec): string {
  const env = Object.entries(spec.env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const parts: unknown[] = [image.digest, image.kernel.id, image.initrd.id, spec.vcpus, spec.memMiB, env, spec.args, spec.driver];
  // Only when set, so the keys of writable specs (and the templates saved under them) stay.
  if (spec.readOnly === true) parts.push('read-only');
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

export function templateName(key: string): string {
  return `tpl-${key.slice(0, 16)}`;
}
