import { hostname } from 'node:os';

export function envString(name: string, fallback: string): string {
  const value = process.env[name];
  return value === undefined || value === '' ? fallback : value;
}

/** Reads a numeric setting; a typo must stop the service at start, not misbehave later. */
export function envNumber(name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new Error(`${name}=${raw} is not a number between ${min} and ${max}`);
  }
  return value;
}

export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(value: string): HostPort {
  const colon = value.lastIndexOf(':');
  const host = value.slice(0, colon);
  const port = Number(value.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`"${value}" is not host:port`);
  }
  return { host, port };
}

/** The settings every demo service shares. */
export interface ServiceConfig {
  port: number;
  /** Address to bind; in a VM every interface, natively the runner narrows it to loopback. */
  host: string;
  /** host:port of the registry. */
  kvstore: string;
  /** host:port other services should use to reach this one. */
  advertise: string;
  /** How long the registry keeps this service's key without a heartbeat. */
  registryTtlSec: number;
}

export function serviceConfig(defaultPort: number): ServiceConfig {
  const port = envNumber('PORT', defaultPort, 1, 65535);
  const kvstore = envString('KVSTORE', '127.0.0.1:9000');
  parseHostPort(kvstore);
  // In a microVM the hostname is the VM name, which the VM DNS resolves.
  const advertise = envString('ADVERTISE', `${hostname()}:${port}`);
  parseHostPort(advertise);
  const registryTtlSec = envNumber('REGISTRY_TTL_SEC', 10, 0.3, 3600);
  return { port, host: envString('HOST', '0.0.0.0'), kvstore, advertise, registryTtlSec };
}
