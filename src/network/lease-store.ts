export interface IpLease {
  ip: string;
  vmId: string;
  mac: string;
  leasedAt: string;
}

/** Where IP leases persist (the daemon's SQLite file). */
export interface LeaseStore {
  leaseFor(vmId: string): IpLease | null;
  listLeases(): IpLease[];
  takeLease(vmId: string, candidates: Iterable<string>, macFor: (ip: string) => string, now: string): IpLease | null;
  lastLeasedIp(): string | null;
  releaseLease(vmId: string): void;
}
