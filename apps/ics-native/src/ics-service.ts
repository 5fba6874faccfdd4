import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServiceProcess } from '@uigniter-demo/native';

export type IcsApp = 'ics-broker' | 'ics-plant' | 'ics-historian' | 'ics-iogateway' | 'ics-controller' | 'ics-alarm';

const appsDir = fileURLToPath(new URL('../../', import.meta.url));

/** The entry point an app's package.json names (its dist/main.js). */
export function entryOf(app: string): string {
  const manifest = JSON.parse(readFileSync(join(appsDir, app, 'package.json'), 'utf8')) as { main?: string };
  return join(appsDir, app, manifest.main ?? 'dist/main.js');
}

/** One ICS service as a local process on 127.0.0.1 (not started yet). */
export function icsService(name: string, app: IcsApp, port: number, env: Record<string, string>, echo = false): ServiceProcess {
  return new ServiceProcess({ name, entry: entryOf(app), port, env: { HOST: '127.0.0.1', EXIT_WITH_PARENT: '1', ...env }, echo, nameWidth: 12 });
}
