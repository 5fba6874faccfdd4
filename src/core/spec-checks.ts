import { invalid } from './errors.js';
import type { ImageManifest, PortMapping } from './models.js';

export const MAX_VCPUS = 32;
export const MAX_MEM_MIB = 64 * 1024;
export const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Checks resources against the image's needs; errors name the field. */
export function checkResources(image: ImageManifest, vcpus: number, memMiB: number, fields = { vcpus: 'vcpus', mem: 'memMiB' }): void {
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > MAX_VCPUS) {
    throw invalid(fields.vcpus, `${fields.vcpus} must be an integer from 1 to ${MAX_VCPUS}, got ${vcpus}`);
  }
  if (!Number.isInteger(memMiB) || memMiB < 1 || memMiB > MAX_MEM_MIB) {
    throw invalid(fields.mem, `${fields.mem} must be an integer from 1 to ${MAX_MEM_MIB} MiB, got ${memMiB}`);
  }
  if (memMiB < image.minMemMiB) {
    throw invalid(fields.mem, `${fields.mem} ${memMiB} MiB is below the minimum of image ${image.name}:${image.tag} (${image.minMemMiB} MiB)`);
  }
}

export function checkName(name: string, field = 'name'): void {
  if (!NAME_RE.test(name)) throw invalid(field, `name '${name}' is invalid: use 1-63 of [a-z0-9-], not starting or ending with '-'`);
}

export function checkEnv(env: Record<string, string>, field = 'env'): void {
  for (const [k, v] of Object.entries(env)) {
    if (!ENV_NAME.test(k)) throw invalid(field, `environment variable name '${k}' is invalid`);
    if (typeof v !== 'string' || v.includes('\0')) throw invalid(field, `environment variable ${k} must be a string without NUL`);
  }
}

export function checkArgs(args: string[] | null, field = 'args'): void {
  if (args && args.some((a) => typeof a !== 'string' || a.includes('\0'))) throw invalid(field, `${field} must be strings without NUL`);
}

export function checkPorts(ports: PortMapping[], field = 'ports'): void {
  const seen = new Set<string>();
  for (const p of ports) {
    for (const [k, v] of [['hostPort', p.hostPort], ['guestPort', p.guestPort]] as const) {
      if (!Number.isInteger(v) || v < 1 || v > 65535) throw invalid(field, `${field}: ${k} must be 1-65535, got ${v}`);
    }
    const key = `${p.hostAddr}:${p.hostPort}`;
    if (seen.has(key)) throw invalid(field, `${field}: host port ${key} is published twice`);
    seen.add(key);
  }
}

/** Parses "HOST:GUEST" or "ADDR:HOST:GUEST" (the -p flag). */
export function parsePortFlag(s: string): PortMapping {
  const parts = s.split(':');
  const nums = parts.slice(-2).map(Number);
  if (parts.length < 2 || parts.length > 3 || nums.some((n) => !Number.isInteger(n))) {
    throw invalid('ports', `port mapping '${s}' must be HOST:GUEST or ADDR:HOST:GUEST`);
  }
  return { hostAddr: parts.length === 3 ? parts[0]! : '127.0.0.1', hostPort: nums[0]!, guestPort: nums[1]!, protocol: 'tcp' };
}

/** Parses "K=V" (the -e flag). */
export function parseEnvFlag(s: string): [string, string] {
  const eq = s.indexOf('=');
  if (eq <= 0) throw invalid('env', `environment setting '${s}' must be KEY=VALUE`);
  return [s.slice(0, eq), s.slice(eq + 1)];
}
