// A leaf with no imports: the dashboard's page imports it as a type.

/** The industrial example as the dashboard follows it: the plant, its controllers and alarms. */
export interface PlantStats {
  plant: {
    /** The plant's own clock (ms since it started). */
    t: number;
    /** What the plant's instruments read (a frozen or spiking sensor shows here). */
    levels: { level1: number; level2: number };
    temp: number;
    /** The process's true values. */
    truth: { level1: number; level2: number; temp: number };
    valves: { inflow1: number; inflow2: number; heater: number };
    /** Active faults, e.g. "stuck-valve inflow2" or "frozen-sensor temp". */
    faults: string[];
    limits: { level: { low: number; high: number; highHigh: number; tankHeight: number }; temp: { low: number; high: number; highHigh: number } };
  };
  /** The active controller's setpoints (null when no controller answers). */
  setpoints: { level1: number; level2: number; temp: number } | null;
  /** `id` is the controller's (`a`, `b`), whether or not it answers. */
  controllers: { id: string; role: string; epoch: number; reachable: boolean }[];
  /** From the historian (null when it does not answer). */
  alarms: { pending: number; recent: { id: string; kind: string | null; tag: string | null; raisedAt: number | null; handledAt: number | null; handledMs: number | null }[] } | null;
}
