import { readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { invalid, UigniterError } from '../core/errors.js';
import type { ImageLayerRef, ImageManifest } from '../core/models.js';
import { exists, writeFileAtomic } from '../util/fs.js';
import { sha256 } from '../util/hash.js';
import type { Paths } from '../util/paths.js';
import type { Progress } from '../util/progress.js';
import { readAppDir, type AppConfig } from './app-config.js';
import { planAppTree } from './app-packer.js';
import { EM_X86_64, readElf } from './elf.js';
import { digestTree } from './file-tree.js';
import { formatImageRef, parseImageRef } from './image-ref.js';
import { buildInitrd } from './initrd-builder.js';
import { buildKernel } from './kernel-builder.js';
import { LayerStore } from './layer-store.js';
import { ensureNodeRuntime, NODE_V8_FLAGS } from './runtime-layer.js';

export interface BuildOptions {
  /** Overrides of the app's own config (CLI flags). */
  overrides?: Partial<Pick<AppConfig, 'entry' | 'args' | 'vcpus' | 'memMiB'>>;
  progress?: Progress;
}

export interface BuildResult {
  manifest: ImageManifest;
  /** True when the app and everything under it were unchanged: nothing was written. */
  unchanged: boolean;
}

/** Asked before an image is removed: a description of who uses it, or null. */
export type ImageUsage = (manifest: ImageManifest) => Promise<string | null>;

const NODE_DEFAULTS = { memMiB: 256, minMemMiB: 128 };
const STATIC_DEFAULTS = { memMiB: 64, minMemMiB: 32 };

/**
 * Images on disk: <home>/images/<name>/<tag>.json manifests over content-addressed layers
 * in <home>/layers, with the kernel and initrd in the build cache.
 */
export class ImageStore {
  readonly layers: LayerStore;

  constructor(private readonly paths: Paths) {
    this.layers = new LayerStore(paths.layers);
  }

  private manifestPath(name: string, tag: string): string {
    return join(this.paths.images, name, `${tag}.json`);
  }

  kernelPath(m: ImageManifest): string {
    return join(this.paths.kernels, m.kernel.id, 'vmlinux');
  }

  initrdPath(m: ImageManifest): string {
    return join(this.paths.initrds, `${m.initrd.id}.cpio`);
  }

  layerPath(layer: ImageLayerRef): string {
    return this.layers.fileFor(layer.id);
  }

  async build(dir: string, ref: string, opts: BuildOptions = {}): Promise<BuildResult> {
    const { name, tag } = parseImageRef(ref, 'name');
    const app = await readAppDir(dir);
    Object.assign(app.config, Object.fromEntries(Object.entries(opts.overrides ?? {}).filter(([, v]) => v !== undefined)));
    const entryFile = join(dir, app.config.entry);
    if (!(await exists(entryFile))) {
      throw invalid('entry', `entry '${app.config.entry}' not found in ${dir}; build the app first?`);
    }
    const elf = await readElf(entryFile);
    let kind: 'node' | 'static';
    if (elf) {
      if (elf.machine !== EM_X86_64) throw invalid('entry', `entry '${app.config.entry}' is not an x86-64 binary`);
      if (elf.interpreter) {
        throw invalid('entry', `entry '${app.config.entry}' is dynamically linked (${elf.interpreter}); link it statically`);
      }
      kind = 'static';
    } else if (/\.(m|c)?js$/.test(app.config.entry)) {
      kind = 'node';
    } else {
      throw invalid('entry', `entry '${app.config.entry}' is neither a .js file nor a static ELF binary`);
    }

    const progress = opts.progress;
    const kernel = await buildKernel({ cacheDir: this.paths.cache, ...(progress ? { progress } : {}) });
    const initrd = await buildInitrd(this.paths.cache);
    progress?.stage('app layer');
    const tree = await planAppTree(app);
    const appDigest = await digestTree(tree);
    const appLayer = await this.layers.ensure(tree, appDigest);
    const layers: ImageLayerRef[] = [{ id: appLayer.id, role: 'app', size: appLayer.size }];
    let runtime: ImageManifest['runtime'] = { kind: 'static' };
    if (kind === 'node') {
      progress?.stage('runtime layer');
      const node = await ensureNodeRuntime(this.layers, this.paths.cache);
      layers.push({ id: node.layer.id, role: 'runtime', size: node.layer.size });
      runtime = { kind: 'node', version: node.version };
    }

    const defaults = kind === 'node' ? NODE_DEFAULTS : STATIC_DEFAULTS;
    const c = app.config;
    const memMiB = c.memMiB ?? Math.max(defaults.memMiB, c.minMemMiB ?? 0);
    const minMemMiB = c.minMemMiB ?? Math.min(defaults.minMemMiB, memMiB);
    if (minMemMiB > memMiB) throw invalid('memMiB', `memMiB ${memMiB} is below the app's minMemMiB ${minMemMiB}`);
    const body = {
      kernel: { id: kernel.id },
      initrd: { id: initrd.id },
      layers,
      runtime,
      entrypoint: kind === 'node' ? ['/usr/bin/node', ...NODE_V8_FLAGS, `/app/${c.entry}`] : [`/app/${c.entry}`],
      args: c.args,
      env: c.env,
      workdir: '/app',
      vcpus: c.vcpus ?? 1,
      memMiB,
      minMemMiB,
      ports: c.ports,
      ready: c.ready ?? (c.ports[0] ? { kind: 'tcp' as const, port: c.ports[0] } : { kind: 'none' as const }),
    };
    const digest = `sha256:${sha256(JSON.stringify(body))}`;
    const existing = await this.find(name, tag);
    if (existing && existing.digest === digest) {
      progress?.finish(`${name}:${tag} unchanged`);
      return { manifest: existing, unchanged: true };
    }
    const manifest: ImageManifest = {
      schemaVersion: 1,
      name,
      tag,
      digest,
      createdAt: new Date().toISOString(),
      ...body,
      source: { dir },
    };
    await writeFileAtomic(this.manifestPath(name, tag), `${JSON.stringify(manifest, null, 2)}\n`);
    progress?.finish(`${name}:${tag} built`);
    return { manifest, unchanged: false };
  }

  async find(name: string, tag: string): Promise<ImageManifest | null> {
    const text = await readFile(this.manifestPath(name, tag), 'utf8').catch(() => null);
    return text ? (JSON.parse(text) as ImageManifest) : null;
  }

  async get(ref: string, field = 'image'): Promise<ImageManifest> {
    const { name, tag } = parseImageRef(ref, field);
    const m = await this.find(name, tag);
    if (!m) throw new UigniterError('not_found', `image '${name}:${tag}' not found`, field);
    return m;
  }

  async list(): Promise<ImageManifest[]> {
    const out: ImageManifest[] = [];
    for (const name of (await readdir(this.paths.images).catch(() => [] as string[])).sort()) {
      for (const file of (await readdir(join(this.paths.images, name)).catch(() => [] as string[])).sort()) {
        if (!file.endsWith('.json')) continue;
        const m = await this.find(name, file.slice(0, -5));
        if (m) out.push(m);
      }
    }
    return out;
  }

  /**
   * Removes an image unless `usage` names a user of it, then drops layers that no image
   * and no VM (`layersInUse`) refers to.
   */
  async remove(ref: string, usage: ImageUsage, layersInUse: () => Promise<Set<string>>): Promise<ImageManifest> {
    const m = await this.get(ref);
    const user = await usage(m);
    if (user) throw new UigniterError('in_use', `image '${formatImageRef(m)}' is used by ${user}`);
    await rm(this.manifestPath(m.name, m.tag), { force: true });
    await rmdir(join(this.paths.images, m.name)).catch(() => undefined); // only when it was the last tag
    const keep = await layersInUse();
    for (const other of await this.list()) for (const l of other.layers) keep.add(l.id);
    await this.layers.collectGarbage(keep);
    return m;
  }

}

