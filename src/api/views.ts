import type { ImageManifest, SnapshotRecord, VmRecord } from '../core/models.js';
import type { PoolStatus } from '../core/pools/pool-service.js';
import type { ServiceStatus } from '../core/services/service-manager.js';
import type { ImageView, PoolView, ServiceView, SnapshotView, VmView } from './schemas.js';

export function vmView(vm: VmRecord): VmView {
  return {
    id: vm.id,
    name: vm.name,
    state: vm.state,
    origin: vm.origin,
    restoredFrom: vm.restoredFrom,
    pool: vm.pool,
    driver: vm.spec.driver,
    image: vm.spec.image,
    imageDigest: vm.manifest.digest,
    ip: vm.ip,
    mac: vm.mac,
    vcpus: vm.spec.vcpus,
    memMiB: vm.spec.memMiB,
    args: vm.spec.args,
    env: vm.spec.env,
    ports: vm.spec.ports.map((p) => ({ hostAddr: p.hostAddr, hostPort: p.hostPort, guestPort: p.guestPort })),
    volumes: vm.spec.volumes,
    readOnly: vm.spec.readOnly === true,
    codeCacheMiB: vm.spec.codeCacheMiB ?? null,
    pid: vm.pid,
    boots: vm.boots,
    bootMs: vm.bootMs,
    exitCode: vm.exitCode,
    error: vm.error,
    createdAt: vm.createdAt,
    stateChangedAt: vm.stateChangedAt,
    startedAt: vm.startedAt,
    readyAt: vm.readyAt,
    stoppedAt: vm.stoppedAt,
  };
}

export function imageView(m: ImageManifest): ImageView {
  return {
    name: m.name,
    tag: m.tag,
    digest: m.digest,
    createdAt: m.createdAt,
    runtime: m.runtime.kind === 'node' ? `node ${m.runtime.version}` : 'static',
    sizeBytes: m.layers.reduce((s, l) => s + l.size, 0),
    vcpus: m.vcpus,
    memMiB: m.memMiB,
    minMemMiB: m.minMemMiB,
    ports: m.ports,
    entrypoint: m.entrypoint,
    args: m.args,
  };
}

export function snapshotView(s: SnapshotRecord, usedBy: string[]): SnapshotView {
  return {
    name: s.name,
    kind: s.kind,
    source: s.source,
    image: s.spec.image,
    imageDigest: s.manifest.digest,
    driver: s.spec.driver,
    vcpus: s.spec.vcpus,
    memMiB: s.spec.memMiB,
    memory: s.state.memory,
    sizeBytes: s.state.bytes,
    appQuiesced: s.state.appQuiesced,
    usedBy,
    createdAt: s.createdAt,
  };
}

export function poolView(p: PoolStatus): PoolView {
  const s = p.pool.spec;
  return {
    id: p.pool.id,
    image: s.image,
    imageDigest: p.pool.imageDigest,
    vcpus: s.vcpus,
    memMiB: s.memMiB,
    env: s.env,
    args: s.args,
    driver: s.driver,
    codeCacheMiB: s.codeCacheMiB ?? null,
    size: p.pool.size,
    warm: p.pool.warm,
    service: p.pool.service,
    ready: p.ready,
    starting: p.starting,
    createdAt: p.pool.createdAt,
  };
}

export function serviceView(s: ServiceStatus): ServiceView {
  const spec = s.record.spec;
  return {
    name: spec.name,
    image: spec.vm.image,
    port: spec.port,
    replicas: spec.replicas,
    restart: spec.restart,
    autoscale: spec.autoscale ? { ...spec.autoscale } : null,
    pool: s.record.poolId && spec.pool ? { id: s.record.poolId, size: spec.pool.size } : null,
    scaleDown: spec.scaleDown ?? 'remove',
    status: { desired: s.desired, ready: s.ready, running: s.running, paused: s.paused },
    gateway: s.gateway,
    vms: s.replicas.map((v) => ({ name: v.name, state: v.state, ip: v.ip, origin: v.origin })),
    createdAt: s.record.createdAt,
  };
}
