import type { Command } from 'commander';
import type { ServiceBody, ServiceView, UigniterClient } from '../../client/client.js';
import { invalid } from '../../core/errors.js';
import { parseEnvFlag } from '../../core/spec-checks.js';
import { printJson, table } from '../output.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];
const int = (v: string): number => Number(v);

async function connect(): Promise<UigniterClient> {
  const { UigniterClient: Client } = await import('../../client/client.js');
  return new Client();
}

/** "MIN:MAX" or "N" (min = max = N). */
export function parseReplicas(s: string): { min: number; max: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(s);
  if (!m) throw invalid('replicas', `replicas '${s}' must be N or MIN:MAX`);
  const min = Number(m[1]);
  return { min, max: m[2] === undefined ? min : Number(m[2]) };
}

function rows(list: ServiceView[]): string {
  return table(
    ['NAME', 'IMAGE', 'REPLICAS', 'DESIRED', 'READY', 'RUNNING', 'AUTOSCALE', 'GATEWAY'],
    list.map((s) => [
      s.name,
      s.image,
      `${s.replicas.min}..${s.replicas.max}`,
      s.status.desired,
      s.status.ready,
      s.status.running,
      s.autoscale ? `${String(s.autoscale.metric)} ${String(s.autoscale.target)}` : null,
      s.gateway,
    ]),
  );
}

export function registerService(program: Command): void {
  const svc = program.command('service').description('services: replicas of an image behind a gateway, kept and scaled by the daemon');
  svc
    .command('create <name> <image>')
    .description('create a service')
    .option('--port <port>', 'the guest port the app serves on (gives the service a gateway)', int)
    .option('--replicas <n|min:max>', 'replica count or bounds', '1')
    .option('--mem <MiB>', 'memory per replica', int)
    .option('--vcpus <n>', 'vCPUs per replica', int)
    .option('-e, --env <K=V>', 'environment variable (repeatable)', collect, [])
    .option('--restart <policy>', 'always, on-failure or never', 'always')
    .option('--liveness <path>', 'HTTP path checked every second; 3 failures replace the replica')
    .option('--readiness <path>', 'HTTP path a replica must answer before it gets traffic')
    .option('--autoscale <metric:target>', 'inflight:N or rps:N (per replica)')
    .option('--scale-to-zero-after <ms>', 'idle time before a service with min 0 goes to zero', int)
    .option('--scale-down <what>', 'what a scale-down does with a running replica: remove (default) or pause (the next scale-up resumes it)')
    .option('--pool <n>', 'spares kept booted and paused for it', int)
    .option('--pool-warm <path>', "HTTP path each spare serves a few times before it is paused (default: its readiness check)")
    .option('--gateway-port <port>', 'host port of its gateway (default: a free one)', int)
    .option('--json', 'JSON output')
    .action(async (name: string, image: string, o: Record<string, string | number | string[] | boolean | undefined>) => {
      const probe = (path: unknown) => (typeof path === 'string' ? { http: { path }, intervalMs: 1000, timeoutMs: 1000, failures: 3 } : undefined);
      let autoscale: ServiceBody['autoscale'];
      if (typeof o.autoscale === 'string') {
        const [metric, target] = o.autoscale.split(':');
        if ((metric !== 'inflight' && metric !== 'rps') || !target) throw invalid('autoscale', `--autoscale '${o.autoscale}' must be inflight:N or rps:N`);
        autoscale = { metric, target: Number(target), ...(o.scaleToZeroAfter !== undefined ? { scaleToZeroAfterMs: o.scaleToZeroAfter as number } : {}) };
      }
      const liveness = probe(o.liveness);
      const readiness = probe(o.readiness);
      const body: ServiceBody = {
        name,
        image,
        replicas: parseReplicas(o.replicas as string),
        restart: o.restart as 'always' | 'on-failure' | 'never',
        ...(o.port !== undefined ? { port: o.port as number } : {}),
        ...(o.mem !== undefined ? { memMiB: o.mem as number } : {}),
        ...(o.vcpus !== undefined ? { vcpus: o.vcpus as number } : {}),
        ...((o.env as string[]).length ? { env: Object.fromEntries((o.env as string[]).map(parseEnvFlag)) } : {}),
        ...(liveness || readiness ? { health: { ...(liveness ? { liveness } : {}), ...(readiness ? { readiness } : {}) } } : {}),
        ...(autoscale ? { autoscale } : {}),
        ...(o.pool !== undefined ? { pool: { size: o.pool as number, ...(typeof o.poolWarm === 'string' ? { warm: { path: o.poolWarm } } : {}) } } : {}),
        ...(o.gatewayPort !== undefined ? { gateway: { hostPort: o.gatewayPort as number } } : {}),
        ...(o.scaleDown !== undefined ? { scaleDown: o.scaleDown as 'remove' | 'pause' } : {}),
      };
      const s = await (await connect()).createService(body);
      if (o.json) printJson(s);
      else process.stdout.write(`${rows([s])}\n`);
    });
  svc
    .command('ls')
    .description('list services')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }) => {
      const list = await (await connect()).services();
      if (o.json) printJson(list);
      else process.stdout.write(`${rows(list)}\n`);
    });
  svc
    .command('inspect <name>')
    .description('a service, its replicas and its latest events, as JSON')
    .action(async (name: string) => {
      const c = await connect();
      const events = (await c.raw<{ events: unknown[] }>('GET', `/services/${encodeURIComponent(name)}/events`)).events.slice(-20);
      printJson({ ...(await c.getService(name)), events });
    });
  svc
    .command('scale <name> <n|min:max>')
    .description('set the replica count (N) or bounds (MIN:MAX)')
    .option('--json', 'JSON output')
    .action(async (name: string, spec: string, o: { json?: boolean }) => {
      const r = parseReplicas(spec);
      const s = await (await connect()).updateService(name, spec.includes(':') ? { replicas: r } : { replicas: r, desired: r.min });
      if (o.json) printJson(s);
      else process.stdout.write(`${rows([s])}\n`);
    });
  svc
    .command('rm <name...>')
    .description('remove services with their replicas, pool and gateway')
    .action(async (names: string[]) => {
      const c = await connect();
      for (const n of names) {
        await c.removeService(n);
        process.stdout.write(`${n}\n`);
      }
    });

  const pool = program.command('pool').description('warm pools: spares of a VM spec kept booted and paused');
  pool
    .command('create <image>')
    .description('keep --size spares of the image (with these settings) ready for `run`')
    .requiredOption('--size <n>', 'spares', int)
    .option('--mem <MiB>', 'memory', int)
    .option('--vcpus <n>', 'vCPUs', int)
    .option('-e, --env <K=V>', 'environment variable (repeatable)', collect, [])
    .option('--warm <path>', "HTTP path each spare serves before it is paused (default: the image's readiness check); it must be safe to repeat")
    .option('--warm-requests <n>', 'warm-up requests per spare (default 10; 0: none)', int)
    .option('--json', 'JSON output')
    .action(async (image: string, o: { size: number; mem?: number; vcpus?: number; env: string[]; warm?: string; warmRequests?: number; json?: boolean }) => {
      const p = await (await connect()).createPool({
        image,
        size: o.size,
        ...(o.mem !== undefined ? { memMiB: o.mem } : {}),
        ...(o.vcpus !== undefined ? { vcpus: o.vcpus } : {}),
        ...(o.env.length ? { env: Object.fromEntries(o.env.map(parseEnvFlag)) } : {}),
        ...(o.warm !== undefined || o.warmRequests !== undefined ? { warm: { ...(o.warm !== undefined ? { path: o.warm } : {}), ...(o.warmRequests !== undefined ? { requests: o.warmRequests } : {}) } } : {}),
      });
      if (o.json) printJson(p);
      else process.stdout.write(`${p.id}\n`);
    });
  pool
    .command('ls')
    .description('list pools')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }) => {
      const list = await (await connect()).pools();
      if (o.json) printJson(list);
      else process.stdout.write(`${table(['ID', 'IMAGE', 'SIZE', 'READY', 'STARTING', 'SERVICE'], list.map((p) => [p.id, p.image, p.size, p.ready.length, p.starting.length, p.service]))}\n`);
    });
  pool
    .command('rm <id...>')
    .description('remove pools and their spares')
    .action(async (ids: string[]) => {
      const c = await connect();
      for (const id of ids) {
        await c.removePool(id);
        process.stdout.write(`${id}\n`);
      }
    });
}
