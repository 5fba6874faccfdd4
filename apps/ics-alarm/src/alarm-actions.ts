import type { AlarmRaised, Command } from '@uigniter-demo/ics-common/messages';
import type { Actuator } from '@uigniter-demo/ics-common/process-limits';

export interface AlarmAction {
  description: string;
  /** A command to send for the safe state, if the alarm calls for one. */
  command?: { actuator: Actuator; command: Command };
}

/**
 * What the handler does per alarm: on high-high level it closes that
 * tank's inflow valve (the controller, seeing the level far above its
 * setpoint, keeps it closed); high level and frozen sensors are logged
 * for the operator.
 */
export function actionFor(alarm: AlarmRaised, latestSeq: number, by: string): AlarmAction {
  if (alarm.kind === 'high-high' && (alarm.tag === 'level1' || alarm.tag === 'level2')) {
    const actuator: Actuator = alarm.tag === 'level1' ? 'inflow1' : 'inflow2';
    return {
      description: `closed ${actuator} (level ${alarm.value} m over high-high)`,
      command: { actuator, command: { value: 0, seq: latestSeq, epoch: 0, source: 'alarm', by, sentAt: Date.now() } },
    };
  }
  if (alarm.kind === 'frozen') return { description: `sensor ${alarm.tag} frozen at ${alarm.value}: operator notified` };
  return { description: `${alarm.kind} ${alarm.tag} = ${alarm.value}: operator notified` };
}
