/**
 * What a scenario needs from a deployment: addresses and a few actions.
 * The engine knows nothing about processes or VMs; the native runner and
 * (later) the microVM runner each supply these.
 */
export interface ScenarioTarget {
  plantUrl: string;
  historianUrl: string;
  gatewayUrl: string;
  /** Controller instance name -> base URL (e.g. {a: ..., b: ...}). */
  controllerUrls: Record<string, string>;
  /** host:port of the MQTT broker, for the scenario's own client. */
  broker: string;
  /** Multiplies every scenario duration and deadline (1 natively; larger for emulated VMs). */
  timeFactor: number;
  /** How long the normal scenario watches the plant (default 6 s times the time factor). */
  normalMs?: number;
  killController(name: string): Promise<void>;
  restartController(name: string): Promise<void>;
  /** Kills the broker, runs `whileDown`, starts it again and resolves once it is healthy. */
  restartBroker(whileDown: () => Promise<void>): Promise<void>;
  alarmHandlerRunning(): Promise<boolean>;
  /** Optional log sink for progress lines. */
  log?(line: string): void;
}

export interface AlarmReport {
  id: string;
  kind: string;
  tag: string;
  raisedAt: number;
  /** handled minus raised, both as received by the historian (one clock). */
  handledMs: number | null;
  wokeFromZero: boolean;
  /** Rows in the historian with this id (must be 1). */
  recorded: number;
}

export interface ScenarioReport {
  scenario: string;
  passed: boolean;
  /** Every failed assertion, stated with its numbers. */
  failures: string[];
  durationMs: number;
  timeFactor: number;
  loopLatencyMs: { p50: number; p99: number; max: number; count: number };
  deadlineMs: number;
  deadlineMisses: number;
  alarms: AlarmReport[];
  failoverMs: number | null;
  withinLimits: boolean;
  /** Highest true level seen during the scenario and the limit it was held to. */
  maxLevel: number;
  levelLimit: number;
  /** Scenario-specific measurements. */
  details: Record<string, number | string | boolean | null>;
}
