import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { VmState } from '../core/models.js';

const STATES: VmState[] = ['creating', 'booting', 'running', 'stopping', 'stopped', 'failed'];

/** Prometheus metrics of one daemon (its own registry, so tests can run several daemons). */
export class ApiMetrics {
  readonly registry = new Registry();
  readonly bootSeconds: Histogram;
  readonly requestSeconds: Histogram;

  constructor(countByState: () => Map<VmState, number>) {
    // The event-loop lag is sampled every 100 ms, not prom-client's 10: a timer that wakes
    // the daemon a hundred times a second was all it did while idle (1.2% of a core with
    // no VM, as much as with 150 idle ones). A stall still shows: it delays the next sample.
    collectDefaultMetrics({ register: this.registry, prefix: 'uigniter_daemon_', eventLoopMonitoringPrecision: 100 });
    new Gauge({
      name: 'uigniter_vms',
      help: 'VMs by lifecycle state',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const counts = countByState();
        for (const s of STATES) this.set({ state: s }, counts.get(s) ?? 0);
      },
    });
    this.bootSeconds = new Histogram({
      name: 'uigniter_vm_boot_seconds',
      help: 'Time from launching the VMM to the app answering its readiness check',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60],
      registers: [this.registry],
    });
    this.requestSeconds = new Histogram({
      name: 'uigniter_http_request_duration_seconds',
      help: 'API request latency',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [this.registry],
    });
  }
}
