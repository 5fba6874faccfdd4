import { isActuator, isLoopName, type Actuator, type LoopName } from './process-limits.js';

/** Every MQTT topic of the ICS demo. */
export const TOPICS = {
  /** Retained, QoS 0: the latest plant sample (published by the I/O gateway). */
  readings: 'plant/readings',
  /** QoS 1: one command per actuator, answering one reading. */
  command: (actuator: Actuator): string => `plant/commands/${actuator}`,
  commandsWildcard: 'plant/commands/+',
  /** QoS 1, retained: setpoint changes (operators, scenarios). */
  setpoint: (loop: LoopName): string => `control/setpoints/${loop}`,
  setpointsWildcard: 'control/setpoints/+',
  /** QoS 0: the active controller's heartbeat. */
  heartbeat: 'control/heartbeat',
  /** QoS 1, retained: which controller is active, with its epoch. */
  active: 'control/active',
  /** QoS 1: alarms raised (gateway) and handled (alarm handler). */
  alarmsRaised: 'alarms/raised',
  alarmsHandled: 'alarms/handled',
} as const;

export function actuatorOfCommandTopic(topic: string): Actuator | undefined {
  const match = /^plant\/commands\/([^/]+)$/.exec(topic);
  return match?.[1] !== undefined && isActuator(match[1]) ? match[1] : undefined;
}

export function loopOfSetpointTopic(topic: string): LoopName | undefined {
  const match = /^control\/setpoints\/([^/]+)$/.exec(topic);
  return match?.[1] !== undefined && isLoopName(match[1]) ? match[1] : undefined;
}
