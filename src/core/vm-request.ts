import { invalid } from './errors.js';
import type { BootMode, ImageManifest, PortMapping, VmSpec, VolumeMount } from './models.js';
import { checkArgs, checkEnv, checkName, checkPorts, checkResources } from './spec-checks.js';

/** What a client asks for when it creates a VM (POST /vm/run, `uigniter run`). */
export interface CreateVmRequest {
  /** The image to boot; or `snapshot`, to clone a named snapshot. */
  image?: string;
  snapshot?: string;
  /** auto (default): from the spec's template when one exists, else cold. */
  boot?: BootMode;
  /** The VMM driver (default: the daemon's). */
  driver?: string;
  name?: string;
  vcpus?: number;
  memMiB?: number;
  args?: string[] | null;
  env?: Record<string, string>;
  ports?: { hostPort: number; guestPort: number; hostAddr?: string }[];
  volumes?: { name: string; mountPath: string; sizeMiB?: number; readOnly?: boolean }[];
  stopTimeoutMs?: number;
  /** Run the image with no writable overlay over its root (the original Uigniter's read_only). */
  readOnly?: boolean;
  /** The VMM's translation cache under TCG, MiB (absent: the driver's default). */
  codeCacheMiB?: number;
}

export const DEFAULT_VOLUME_MIB = 1024;
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** What a VM may ask of TCG's translation cache, MiB: below 16 a booting guest thrashes it. */
export const CODE_CACHE_MIB = { min: 16, max: 1024 } as const;

/** A spec's code cache as request fields: `{}` for the default (a VM made from a pool's or a service's spec). */
export function codeCacheOf(spec: Pick<VmSpec, 'codeCacheMiB'>): Pick<CreateVmRequest, 'codeCacheMiB'> {
  return spec.codeCacheMiB !== undefined ? { codeCacheMiB: spec.codeCacheMiB } : {};
}

/** The code cache asked for, checked; `{}` when none was. */
function codeCache(req: CreateVmRequest): Pick<VmSpec, 'codeCacheMiB'> {
  const n = req.codeCacheMiB;
  if (n === undefined) return {};
  if (!Number.isInteger(n) || n < CODE_CACHE_MIB.min || n > CODE_CACHE_MIB.max) {
    throw invalid('codeCacheMiB', `codeCacheMiB must be an integer from ${CODE_CACHE_MIB.min} to ${CODE_CACHE_MIB.max}`);
  }
  return { codeCacheMiB: n };
}
const MOUNT_PATH = /^\/[A-Za-z0-9._/-]*$/;
const RESERVED_MOUNTS = ['/', '/proc', '/sys', '/dev', '/tmp', '/run', '/app', '/usr', '/lib', '/lib64', '/bin', '/etc'];

function volumes(list: CreateVmRequest['volumes']): VolumeMount[] {
  const out: VolumeMount[] = [];
  const names = new Set<string>();
  const paths = new Set<string>();
  (list ?? []).forEach((v, i) => {
    const f = `volumes[${i}]`;
    checkName(v.name, `${f}.name`);
    const path = v.mountPath.replace(/\/+$/, '') || '/';
    if (!MOUNT_PATH.test(path) || path.split('/').includes('..')) throw invalid(`${f}.mountPath`, `${f}.mountPath '${v.mountPath}' must be an absolute path of [A-Za-z0-9._-/]`);
    if (RESERVED_MOUNTS.includes(path)) throw invalid(`${f}.mountPath`, `${f}.mountPath '${path}' is reserved`);
    if (names.has(v.name)) throw invalid(`${f}.name`, `volume '${v.name}' is listed twice`);
    if (paths.has(path)) throw invalid(`${f}.mountPath`, `two volumes are mounted at '${path}'`);
    names.add(v.name);
    paths.add(path);
    const sizeMiB = v.sizeMiB ?? DEFAULT_VOLUME_MIB;
    if (!Number.isInteger(sizeMiB) || sizeMiB < 16 || sizeMiB > 1024 * 1024) throw invalid(`${f}.sizeMiB`, `${f}.sizeMiB must be from 16 to 1048576`);
    out.push({ name: v.name, mountPath: path, sizeMiB, readOnly: v.readOnly ?? false });
  });
  return out;
}

/** What the spec must fit of the driver it runs on. */
export interface DriverFit {
  name: string;
  maxDisks: number;
}

/** Turns a request into a checked spec; every problem names its field. */
export function specFromRequest(req: CreateVmRequest, image: ImageManifest, name: string, driver: DriverFit): VmSpec {
  const vcpus = req.vcpus ?? image.vcpus;
  const memMiB = req.memMiB ?? image.memMiB;
  checkResources(image, vcpus, memMiB);
  checkName(name);
  const env = req.env ?? {};
  checkEnv(env);
  const args = req.args ?? null;
  checkArgs(args);
  const ports: PortMapping[] = (req.ports ?? []).map((p) => ({
    hostPort: p.hostPort,
    guestPort: p.guestPort,
    hostAddr: p.hostAddr ?? '127.0.0.1',
    protocol: 'tcp',
  }));
  checkPorts(ports);
  const stopTimeoutMs = req.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
  if (!Number.isInteger(stopTimeoutMs) || stopTimeoutMs < 0 || stopTimeoutMs > 600_000) {
    throw invalid('stopTimeoutMs', 'stopTimeoutMs must be from 0 to 600000');
  }
  const vols = volumes(req.volumes);
  if (req.readOnly !== undefined && typeof req.readOnly !== 'boolean') throw invalid('readOnly', 'readOnly must be a boolean');
  // Layers, volumes and the config drive are each a disk of the VM.
  const disks = image.layers.length + vols.length + 1;
  if (disks > driver.maxDisks) {
    throw invalid('volumes', `image ${image.name}:${image.tag} has ${image.layers.length} layer disks; with ${vols.length} volumes and the config drive that is ${disks} disks, and driver ${driver.name} gives a VM at most ${driver.maxDisks}`);
  }
  const spec: VmSpec = { image: `${image.name}:${image.tag}`, driver: driver.name, name, vcpus, memMiB, args, env, ports, volumes: vols, stopTimeoutMs, ...codeCache(req) };
  return req.readOnly === true ? { ...spec, readOnly: true } : spec;
}

/** A clone's spec: the snapshot's, with the clone's own name, ports, stop timeout and (a new VMM's) code cache. */
export function cloneSpec(req: CreateVmRequest, from: VmSpec, name: string): VmSpec {
  for (const f of ['image', 'boot', 'driver', 'vcpus', 'memMiB', 'args', 'env', 'volumes', 'readOnly'] as const) {
    if (req[f] !== undefined) throw invalid(f, `${f} cannot be set for a clone: it runs with the snapshot's (${f === 'volumes' ? 'snapshots carry no volumes' : 'its memory holds them'})`);
  }
  checkName(name);
  const ports: PortMapping[] = (req.ports ?? []).map((p) => ({ hostPort: p.hostPort, guestPort: p.guestPort, hostAddr: p.hostAddr ?? '127.0.0.1', protocol: 'tcp' }));
  checkPorts(ports);
  const stopTimeoutMs = req.stopTimeoutMs ?? from.stopTimeoutMs;
  return { ...from, name, ports, volumes: [], stopTimeoutMs, ...codeCache(req) };
}
