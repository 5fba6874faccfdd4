import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { UigniterError } from './errors.js';
import { writeConfigDrive, type GuestConfig } from '../guest/config-drive.js';
import type { ImageManifest, VmSpec } from './models.js';
import type { DiskAttachment, GuestAddress, ImageCatalog, LaunchSpec, NicAttachment } from './ports.js';

export const CONFIG_DRIVE = 'config.img';
export const CONSOLE_LOG = 'console.log';
/** The console log is rotated into `console.log.1` past this: about twice it on disk per VM at most. */
export const CONSOLE_ROTATE_BYTES = 512 * 1024;

export interface BootNetwork {
  nic: NicAttachment | null;
  address: GuestAddress | null;
  dns: string[];
  search: string | null;
}

export interface BootVolume {
  path: string;
  uuid: string;
  mountPath: string;
  readOnly: boolean;
}

/** The guest's side of a boot: what its init is told through the config drive. */
export function guestConfigFor(
  image: ImageManifest,
  spec: VmSpec,
  hostname: string,
  net: BootNetwork,
  volumes: BootVolume[],
  now: Date,
): GuestConfig {
  return {
    hostname,
    argv: [...image.entrypoint, ...(spec.args ?? image.args)],
    env: { ...image.env, ...spec.env },
    workdir: image.workdir,
    layers: image.layers.map((l) => l.id),
    volumes: volumes.map((v) => ({ uuid: v.uuid, mountPath: v.mountPath, readOnly: v.readOnly })),
    hosts: [],
    dns: net.dns,
    search: net.search,
    ready: image.ready,
    stopTimeoutMs: spec.stopTimeoutMs,
    time: now.getTime() / 1000,
    // The Node runtime layer carries the clone hooks; the init loads them when present.
    appHooks: image.runtime.kind === 'node' ? 'node' : null,
    rootReadOnly: spec.readOnly === true,
  };
}

/**
 * Writes the config drive into runDir and returns what the VMM needs to boot the VM:
 * kernel, initrd, the image's layers read-only (shared, never copied), volumes read-write,
 * then the config drive.
 */
export async function prepareBoot(
  images: ImageCatalog,
  image: ImageManifest,
  spec: VmSpec,
  vm: { id: string; hostname: string; runDir: string },
  net: BootNetwork,
  volumes: BootVolume[],
  now: Date,
  verbose = false,
): Promise<LaunchSpec> {
  const configPath = join(vm.runDir, CONFIG_DRIVE);
  const launch = await launchSpecFor(images, image, spec, vm, net, volumes, configPath, verbose);
  await writeConfigDrive(configPath, guestConfigFor(image, spec, vm.hostname, net, volumes, now));
  return launch;
}

/**
 * The VMM's view of a VM: kernel, initrd, the image's layers read-only (shared, never
 * copied), volumes, then the config drive. A restore attaches the same disks in the same
 * order, with the config drive the snapshot was taken with.
 */
export async function launchSpecFor(
  images: ImageCatalog,
  image: ImageManifest,
  spec: VmSpec,
  vm: { id: string; hostname: string; runDir: string },
  net: Pick<BootNetwork, 'nic' | 'address'>,
  volumes: BootVolume[],
  configPath: string,
  verbose = false,
): Promise<LaunchSpec> {
  const kernel = images.kernelPath(image);
  const initrd = images.initrdPath(image);
  const layers = image.layers.map((l) => images.layerPath(l));
  for (const [what, path] of [['kernel', kernel], ['initrd', initrd], ...layers.map((p) => ['layer', p])] as const) {
    // Caches and layers live on disk apart from the manifest: say which part is gone.
    await access(path).catch(() => {
      throw new UigniterError('failed_precondition', `image ${image.name}:${image.tag}: its ${what} ${path} is missing; rebuild the image ('uigniter image build')`, 'image');
    });
  }
  const disks: DiskAttachment[] = [
    ...layers.map((path) => ({ path, readOnly: true })),
    ...volumes.map((v) => ({ path: v.path, readOnly: v.readOnly })),
    { path: configPath, readOnly: true },
  ];
  return {
    vmId: vm.id,
    hostname: vm.hostname,
    vcpus: spec.vcpus,
    memMiB: spec.memMiB,
    ...(spec.codeCacheMiB !== undefined ? { codeCacheMiB: spec.codeCacheMiB } : {}),
    kernel,
    initrd,
    disks,
    nic: net.nic,
    address: net.address,
    runDir: vm.runDir,
    consoleLog: join(vm.runDir, CONSOLE_LOG),
    verbose,
  };
}
