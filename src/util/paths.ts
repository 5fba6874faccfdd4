import { createHash } from 'node:crypto';
import { join } from 'node:path';

export const DEFAULT_HOME = '/var/lib/uigniter';

/** The state directory: --home, then UIGNITER_HOME, then /var/lib/uigniter. */
export function resolveHome(flag?: string): string {
  return flag ?? process.env.UIGNITER_HOME ?? DEFAULT_HOME;
}

/**
 * Where everything uigniter keeps lives. Build caches (kernels, initrds) sit apart from
 * the state so several homes (tests, users) can share one kernel build: UIGNITER_CACHE,
 * else <home>/cache.
 */
export class Paths {
  readonly home: string;
  readonly cache: string;

  constructor(home: string, cache?: string) {
    this.home = home;
    this.cache = cache ?? process.env.UIGNITER_CACHE ?? join(home, 'cache');
  }

  get stateDb(): string {
    return join(this.home, 'state.db');
  }
  get images(): string {
    return join(this.home, 'images');
  }
  get layers(): string {
    return join(this.home, 'layers');
  }
  get volumes(): string {
    return join(this.home, 'volumes');
  }
  get vms(): string {
    return join(this.home, 'vms');
  }
  get snapshots(): string {
    return join(this.home, 'snapshots');
  }
  /** Guest RAM files: a tmpfs, one directory per home so test daemons never share one. */
  get memory(): string {
    return join('/dev/shm', `uigniter-${createHash('sha256').update(this.home).digest('hex').slice(0, 12)}`);
  }
  get tmp(): string {
    return join(this.home, 'tmp');
  }
  vmDir(id: string): string {
    return join(this.vms, id);
  }
  get kernels(): string {
    return join(this.cache, 'kernels');
  }
  get initrds(): string {
    return join(this.cache, 'initrd');
  }
  get runtimes(): string {
    return join(this.cache, 'runtime');
  }
}
