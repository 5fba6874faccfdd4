import type { MqttClient } from 'mqtt';
import { randomUUID } from 'node:crypto';
import { connectMqtt, endMqtt, publishJson, whenConnected } from '@uigniter-demo/ics-common/mqtt-connection';
import { DEFAULT_SETPOINTS, LOOPS, type Actuator, type LoopName } from '@uigniter-demo/ics-common/process-limits';
import { TOPICS } from '@uigniter-demo/ics-common/topics';
import type { Command } from '@uigniter-demo/ics-common/messages';
import type { LatencySummary } from '@uigniter-demo/ics-common/plant-api';
import type { ScenarioTarget } from './scenario-target.js';
import type { TracePoint } from './trajectory.js';

/** GET /latency of the plant. */
export interface LatencyReport extends LatencySummary {
  now: number;
  /** The latest misses (plant time), late ones with their latency. */
  misses: { t: number; kind: 'late' | 'no-command'; latencyMs?: number }[];
}

export interface ControllerStatus {
  id: string;
  role: 'active' | 'standby';
  epoch: number;
  seenEpoch: number;
  setpoints: Record<LoopName, number>;
  rejected: number;
  mqttConnected: boolean;
}

export interface GatewayStatus {
  rejected: number;
  commandsWritten: number;
  alarmsRaised: number;
  maxEpoch: number;
  lastSeq: number;
}

export interface HistorianStats {
  readings: number;
  alarms: number;
  pendingAlarms: number;
  rejected: number;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

export async function postJson<T>(url: string, body: unknown): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${url}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

/** The scenario's view of a deployment: HTTP helpers, its own MQTT client, and time scaled by the factor. */
export class ScenarioContext {
  readonly failures: string[] = [];
  readonly details: Record<string, number | string | boolean | null> = {};
  private client: MqttClient | undefined;

  constructor(readonly target: ScenarioTarget) {}

  /** A duration scaled by the time factor. */
  ms(base: number): number {
    return Math.round(base * this.target.timeFactor);
  }

  log(line: string): void {
    this.target.log?.(line);
  }

  check(ok: boolean, failure: string): boolean {
    if (!ok) this.failures.push(failure);
    return ok;
  }

  async mqtt(): Promise<MqttClient> {
    if (!this.client) {
      // clean:false so QoS 1 publishes made while the broker is down are sent once it is back.
      this.client = connectMqtt({ broker: this.target.broker, clientId: `ics-scenario-${randomUUID().slice(0, 8)}`, clean: false, label: 'scenario', quiet: true });
      await whenConnected(this.client);
    }
    return this.client;
  }

  async close(): Promise<void> {
    if (this.client) await endMqtt(this.client, true);
  }

  async publishRaw(topic: string, payload: string, retain = false): Promise<void> {
    const client = await this.mqtt();
    await new Promise<void>((resolve, reject) => client.publish(topic, payload, { qos: 1, retain }, (err) => (err ? reject(err) : resolve())));
  }

  async setSetpoint(loop: LoopName, value: number): Promise<void> {
    await publishJson(await this.mqtt(), TOPICS.setpoint(loop), { value, by: 'scenario' }, 1, true);
  }

  /** Publishes an operator command; resolves when mqtt.js has it (sent, or queued while offline). */
  async operatorCommand(actuator: Actuator, value: number, seq: number): Promise<void> {
    const command: Command = { value, seq, epoch: 0, source: 'operator', by: 'scenario', sentAt: Date.now() };
    const client = await this.mqtt();
    client.publish(TOPICS.command(actuator), JSON.stringify(command), { qos: 1 });
  }

  plantState(): Promise<{ now: number; seq: number; faults: unknown[] }> {
    return getJson(`${this.target.plantUrl}/state`);
  }

  async plantNow(): Promise<number> {
    return (await this.plantState()).now;
  }

  async trace(since: number): Promise<TracePoint[]> {
    return (await getJson<{ entries: TracePoint[] }>(`${this.target.plantUrl}/trace?since=${since}`)).entries;
  }

  latency(since: number): Promise<LatencyReport> {
    return getJson(`${this.target.plantUrl}/latency?since=${since}`);
  }

  fault(body: Record<string, unknown>): Promise<unknown> {
    return postJson(`${this.target.plantUrl}/faults`, body);
  }

  /** Status of every controller that answers (a killed one is simply absent). */
  async controllers(): Promise<Record<string, ControllerStatus>> {
    const entries = await Promise.all(
      Object.entries(this.target.controllerUrls).map(async ([name, url]) => {
        const status = await getJson<ControllerStatus>(`${url}/status`).catch(() => undefined);
        return [name, status] as const;
      }),
    );
    return Object.fromEntries(entries.filter((e): e is readonly [string, ControllerStatus] => e[1] !== undefined));
  }

  /** Name of the active controller instance (waits up to `timeoutMs` for exactly one). */
  async activeController(timeoutMs = this.ms(10_000)): Promise<{ name: string; status: ControllerStatus }> {
    return this.waitFor('one active controller', async () => {
      const statuses = await this.controllers();
      const active = Object.entries(statuses).filter(([, s]) => s.role === 'active');
      return active.length === 1 ? { name: (active[0] as [string, ControllerStatus])[0], status: (active[0] as [string, ControllerStatus])[1] } : undefined;
    }, timeoutMs);
  }

  gateway(): Promise<GatewayStatus> {
    return getJson(`${this.target.gatewayUrl}/status`);
  }

  historian(): Promise<HistorianStats> {
    return getJson(`${this.target.historianUrl}/stats`);
  }

  async waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number, intervalMs = 100): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe().catch(() => undefined);
      if (value !== undefined && value !== false) return value;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(intervalMs);
    }
  }

  /**
   * Default setpoints, no faults, one active controller, and every loop
   * within tolerance (levels ±0.05 m, temperature ±1.5 °C) for a full second.
   */
  async baseline(): Promise<void> {
    await this.fault({ name: 'clear' });
    for (const loop of LOOPS) await this.setSetpoint(loop, DEFAULT_SETPOINTS[loop]);
    await this.activeController();
    // Eight samples in a row at the setpoints, whatever the plant's period.
    const { periodMs } = await getJson<{ periodMs: number }>(`${this.target.plantUrl}/state`);
    await this.waitFor(
      'the plant to settle at the default setpoints',
      async () => {
        const now = await this.plantNow();
        const trace = await this.trace(now - Math.max(1000, 10 * periodMs));
        return (
          trace.length >= 8 &&
          trace.every(
            (p) =>
              Math.abs(p.truth.level1 - DEFAULT_SETPOINTS.level1) <= 0.05 &&
              Math.abs(p.truth.level2 - DEFAULT_SETPOINTS.level2) <= 0.05 &&
              Math.abs(p.truth.temp - DEFAULT_SETPOINTS.temp) <= 1.5,
          )
        );
      },
      this.ms(30_000),
      200,
    );
  }
}
