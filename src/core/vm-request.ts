import { invalid } from './errors.js';
import type { ImageManifest, PortMapping, VmSpec, VolumeMount } from './models.js';
import { checkArgs, checkEnv, checkName, checkPorts, checkResources } from './spec-checks.js';

/** What a client asks for when it creates a VM (POST /vm/run, `uigniter run`). */
export interface CreateVmRequest {
  image: string;
  name?: string;
  vcpus?: number;
  memMiB?: number;
  args?: string[] | null;
  env?: Record<string, string>;
  ports?: { hostPort: number; guestPort: number; hostAddr?: string }[];
  volumes?: { name: string; mountPath: string; sizeMiB?: number; readOnly?: boolean }[];
  stopTimeoutMs?: number;
}

export const DEFAULT_VOLUME_MIB = 1024;
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
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

/** Turns a request into a checked spec; every problem names its field. */
export function specFromRequest(req: CreateVmRequest, image: ImageManifest, name: string): VmSpec {
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
  return { image: `${image.name}:${image.tag}`, name, vcpus, memMiB, args, env, ports, volumes: volumes(req.volumes), stopTimeoutMs };
}
