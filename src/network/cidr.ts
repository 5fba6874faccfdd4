import { invalid } from '../core/errors.js';

export interface Cidr {
  network: number;
  prefix: number;
}

export function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw invalid('subnet', `'${ip}' is not an IPv4 address`);
  }
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

export function parseCidr(s: string, field = 'subnet'): Cidr {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(s);
  if (!m) throw invalid(field, `'${s}' is not a CIDR like 172.30.0.0/24`);
  const prefix = Number(m[2]);
  if (prefix < 8 || prefix > 30) throw invalid(field, `${field} prefix must be from /8 to /30`);
  const mask = (0xffffffff << (32 - prefix)) >>> 0;
  return { network: (ipToInt(m[1]!) & mask) >>> 0, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${intToIp(c.network)}/${c.prefix}`;
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

/** The n-th address of the block (0 = network address). */
export function nth(c: Cidr, n: number): string {
  return intToIp((c.network + n) >>> 0);
}

export function contains(c: Cidr, ip: string): boolean {
  const mask = (0xffffffff << (32 - c.prefix)) >>> 0;
  return ((ipToInt(ip) & mask) >>> 0) === c.network;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  const mask = (0xffffffff << (32 - p)) >>> 0;
  return ((a.network & mask) >>> 0) === ((b.network & mask) >>> 0);
}
