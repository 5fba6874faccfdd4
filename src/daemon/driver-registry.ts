import { UigniterError } from '../core/errors.js';
import type { Vmm, VmmRegistry } from '../core/ports.js';
import { QemuVmm } from '../drivers/qemu/qemu-vmm.js';

export interface DriverOptions {
  log: (msg: string) => void;
  /** A tmpfs directory for guest RAM files (drivers that keep RAM in files). */
  memDir: string;
  /** Confine the VMMs (default on; see drivers/qemu/confinement.ts). */
  confine?: boolean;
}

/** The one place drivers are built. A VM's spec names its driver; the first is the default. */
export class DriverRegistry implements VmmRegistry {
  private readonly drivers: Map<string, Vmm>;

  constructor(drivers: Vmm[]) {
    if (drivers.length === 0) throw new Error('a daemon needs at least one VMM driver');
    this.drivers = new Map(drivers.map((d) => [d.name, d]));
  }

  static builtIn(o: DriverOptions): DriverRegistry {
    return new DriverRegistry([new QemuVmm({ log: o.log, memDir: o.memDir, confine: o.confine })]);
  }

  get defaultName(): string {
    return this.drivers.keys().next().value!;
  }

  get(name: string, field = 'driver'): Vmm {
    const d = this.drivers.get(name);
    if (!d) throw new UigniterError('invalid_argument', `no VMM driver named '${name}' (this daemon has: ${this.names().join(', ')})`, field);
    return d;
  }

  names(): string[] {
    return [...this.drivers.keys()];
  }
}
