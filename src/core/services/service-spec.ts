import { checkAutoscale } from '../autoscale/autoscale-settings.js';
import { invalid } from '../errors.js';
import type { ImageManifest, Probe, RestartPolicy, ScaleDown, ServiceSpec } from '../models.js';
import { resolveWarm, type WarmRequest } from '../pools/warm-up.js';
import { checkName } from '../spec-checks.js';
import { codeCacheOf, specFromRequest, type DriverFit } from '../vm-request.js';

/** What a client asks for when it creates a service (POST /services). */
export interface CreateServiceRequest {
  name: string;
  image: string;
  vcpus?: number;
  memMiB?: number;
  env?: Record<string, string>;
  args?: string[] | null;
  codeCacheMiB?: number;
  port?: number;
  replicas: { min: number; max: number };
  health?: { readiness?: ProbeRequest; liveness?: ProbeRequest };
  restart?: RestartPolicy;
  autoscale?: Record<string, unknown>;
  pool?: { size: number; warm?: WarmRequest };
  gateway?: { hostPort?: number; hostAddr?: string };
  stopTimeoutMs?: number;
  scaleDown?: ScaleDown;
}

export interface ProbeRequest {
  http?: { path: string };
  tcp?: boolean;
  intervalMs?: number;
  timeoutMs?: number;
  failures?: number;
}

export const MAX_REPLICAS = 64;

function probe(p: ProbeRequest | undefined, field: string, port: number | null): Probe | null {
  if (p === undefined) return null;
  if (port === null) throw invalid(`${field}`, `${field} needs the service's port`);
  if ((p.http === undefined) === (p.tcp === undefined || p.tcp === false)) throw invalid(field, `${field} needs exactly one of http: {path} or tcp: true`);
  if (p.http && !/^\/[\x21-\x7e]*$/.test(p.http.path)) throw invalid(`${field}.http.path`, `${field}.http.path must start with / and hold no spaces`);
  const n = (v: number | undefined, def: number, min: number, max: number, f: string): number => {
    const x = v ?? def;
    if (!Number.isInteger(x) || x < min || x > max) throw invalid(`${field}.${f}`, `${field}.${f} must be an integer from ${min} to ${max}`);
    return x;
  };
  return {
    kind: p.http ? 'http' : 'tcp',
    path: p.http?.path ?? null,
    intervalMs: n(p.intervalMs, 1000, 100, 600_000, 'intervalMs'),
    timeoutMs: n(p.timeoutMs, 1000, 10, 60_000, 'timeoutMs'),
    failures: n(p.failures, 3, 1, 100, 'failures'),
  };
}

/** Turns a request into a checked service spec; every problem names its field. */
export function serviceSpecFrom(req: CreateServiceRequest, image: ImageManifest, driver: DriverFit): ServiceSpec {
  checkName(req.name, 'name');
  const { min, max } = req.replicas;
  if (!Number.isInteger(min) || min < 0 || min > MAX_REPLICAS) throw invalid('replicas.min', `replicas.min must be an integer from 0 to ${MAX_REPLICAS}`);
  if (!Number.isInteger(max) || max < 1 || max > MAX_REPLICAS) throw invalid('replicas.max', `replicas.max must be an integer from 1 to ${MAX_REPLICAS}`);
  if (min > max) throw invalid('replicas.min', `replicas.min (${min}) is above replicas.max (${max})`);
  const port = req.port ?? null;
  if (port !== null && (!Number.isInteger(port) || port < 1 || port > 65535)) throw invalid('port', 'port must be 1-65535');
  const vm = specFromRequest(
    { image: req.image, ...(req.vcpus !== undefined ? { vcpus: req.vcpus } : {}), ...(req.memMiB !== undefined ? { memMiB: req.memMiB } : {}), env: req.env ?? {}, args: req.args ?? null, ...(req.stopTimeoutMs !== undefined ? { stopTimeoutMs: req.stopTimeoutMs } : {}), ...codeCacheOf(req) },
    image,
    req.name,
    driver,
  );
  const restart = req.restart ?? 'always';
  if (!['always', 'on-failure', 'never'].includes(restart)) throw invalid('restart', "restart must be 'always', 'on-failure' or 'never'");
  const autoscale = req.autoscale === undefined ? null : checkAutoscale(req.autoscale);
  if (autoscale && autoscale.metric !== 'http-json' && port === null) throw invalid('autoscale.metric', `autoscale.metric ${autoscale.metric} is measured at the gateway: the service needs a port`);
  const pool = req.pool ? { size: req.pool.size, warm: req.pool.warm ?? {} } : null;
  if (pool && (!Number.isInteger(pool.size) || pool.size < 0 || pool.size > MAX_REPLICAS)) throw invalid('pool.size', `pool.size must be an integer from 0 to ${MAX_REPLICAS}`);
  const readiness = probe(req.health?.readiness, 'health.readiness', port);
  if (pool) resolveWarm(pool.warm, image, 'pool.warm', port, readiness?.path ?? null); // checked now: nothing is made from a bad spec
  const scaleDown = req.scaleDown ?? 'remove';
  if (scaleDown !== 'remove' && scaleDown !== 'pause') throw invalid('scaleDown', "scaleDown must be 'remove' or 'pause'");
  const hostPort = req.gateway?.hostPort ?? null;
  if (hostPort !== null && (!Number.isInteger(hostPort) || hostPort < 1 || hostPort > 65535)) throw invalid('gateway.hostPort', 'gateway.hostPort must be 1-65535');
  return {
    name: req.name,
    vm,
    port,
    replicas: { min, max },
    health: { readiness, liveness: probe(req.health?.liveness, 'health.liveness', port) },
    restart,
    autoscale,
    pool,
    gateway: { hostAddr: req.gateway?.hostAddr ?? '127.0.0.1', hostPort },
    scaleDown,
  };
}
