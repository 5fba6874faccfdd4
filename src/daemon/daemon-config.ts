import { availableParallelism, totalmem } from 'node:os';
import { invalid } from '../core/errors.js';
import type { ManagerLimits } from '../core/supervision/limits.js';
import { DEFAULT_NETWORK, type VmNetworkOptions } from '../network/vm-network-config.js';

export interface DaemonConfig {
  home: string;
  cache?: string;
  host: string;
  port: number;
  /** Also listen on this unix socket. */
  socket: string | null;
  /**
   * The dashboard's port on the same host, serving the page and the whole API (browsers and
   * fetch() refuse the API's own port 6666); 0: any free port; null: none.
   */
  uiPort: number | null;
  token: string | null;
  network: VmNetworkOptions;
  limits: ManagerLimits;
  readyTimeoutMs: number;
  /** Snapshot the first VM of each spec into a template that later VMs of it restore from. */
  templates: boolean;
  /** On shutdown, stop every VM (else leave them running for the next daemon to adopt). */
  stopVmsOnExit: boolean;
  logLevel: string;
  /**
   * Run each VMM confined (chroot, own uid, seccomp, cgroup). Absent: on, unless
   * UIGNITER_CONFINE=off; a daemon that is not root cannot confine and says so.
   */
  confine?: boolean;
}

export const DEFAULT_PORT = 6666;
export const DEFAULT_UI_PORT = 6680;

/**
 * Limits that let a host fill up with idle VMs: memory counts what VMs hold and vCPUs what
 * they burn (limits.ts), so the caps are the host's own size, less what it keeps free.
 */
export function defaultLimits(): ManagerLimits {
  const totalMiB = totalmem() / 1024 / 1024;
  return {
    maxVms: 1000,
    maxVcpus: availableParallelism() * 16,
    maxMemMiB: Math.floor(totalMiB * 0.9),
    minFreeMiB: Math.max(512, Math.floor(totalMiB * 0.05)),
  };
}

export function defaultConfig(home: string): DaemonConfig {
  return {
    home,
    host: '127.0.0.1',
    port: DEFAULT_PORT,
    socket: null,
    uiPort: DEFAULT_UI_PORT,
    token: process.env.UIGNITER_TOKEN ?? null,
    network: { ...DEFAULT_NETWORK },
    limits: defaultLimits(),
    readyTimeoutMs: 90_000,
    templates: true,
    stopVmsOnExit: false,
    logLevel: process.env.UIGNITER_LOG_LEVEL ?? 'info',
  };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** A daemon reachable from other hosts must demand a token. */
export function checkConfig(c: DaemonConfig): void {
  if (!isLoopback(c.host) && !c.token) {
    throw invalid('host', `listening on ${c.host} needs a bearer token: pass --token or set UIGNITER_TOKEN`);
  }
  if (!Number.isInteger(c.port) || c.port < 0 || c.port > 65535) throw invalid('port', `port ${c.port} is not a port`);
  if (c.uiPort !== null && (!Number.isInteger(c.uiPort) || c.uiPort < 0 || c.uiPort > 65535)) throw invalid('uiPort', `ui port ${c.uiPort} is not a port`);
  if (c.uiPort !== null && c.uiPort !== 0 && c.uiPort === c.port) throw invalid('uiPort', `the ui port must differ from the API port (${c.port})`);
  for (const [k, v] of Object.entries(c.limits)) {
    if (!Number.isInteger(v) || v < 1) throw invalid(k, `${k} must be a positive integer`);
  }
}
