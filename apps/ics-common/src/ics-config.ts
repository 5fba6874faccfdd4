import { envNumber, envString, parseHostPort } from '@uigniter-demo/common/config';

/** Settings every ICS service reads: its HTTP port and bind address, the broker, the control period. */
export interface IcsConfig {
  port: number;
  host: string;
  broker: string;
  controlPeriodMs: number;
}

export function icsConfig(defaultPort: number): IcsConfig {
  const broker = envString('BROKER', '127.0.0.1:1883');
  parseHostPort(broker);
  return {
    port: envNumber('PORT', defaultPort, 1, 65535),
    host: envString('HOST', '0.0.0.0'),
    broker,
    controlPeriodMs: envNumber('CONTROL_PERIOD_MS', 100, 10, 10_000),
  };
}
