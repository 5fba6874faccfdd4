import type { ScenarioTarget } from '@uigniter-demo/ics-scenarios';
import type { UigniterClient } from '../../client/client.js';
import { ALARM_SERVICE, ICS_PORTS, waitFor, type IcsAddresses } from './ics-deployment.js';

const controllerVm = (name: string): string => {
  if (name !== 'a' && name !== 'b') throw new Error(`no controller ${name}`);
  return `controller-${name}`;
};

/**
 * The example on microVMs as the scenario engine sees it: guest addresses, and actions done
 * to the VMs themselves: a controller's VMM SIGKILLed (the VM dies as a machine would), the
 * broker VM stopped and started again (its volume keeps its sessions), the alarm service's
 * replica count read from the daemon.
 */
export function icsVmTarget(client: UigniterClient, a: IcsAddresses, timeFactor: number, log?: (line: string) => void): ScenarioTarget {
  const target: ScenarioTarget = {
    plantUrl: `http://${a.plant}:${ICS_PORTS.plant}`,
    historianUrl: `http://${a.historian}:${ICS_PORTS.historian}`,
    gatewayUrl: `http://${a.iogateway}:${ICS_PORTS.iogateway}`,
    controllerUrls: { a: `http://${a.controllers.a}:${ICS_PORTS.controller}`, b: `http://${a.controllers.b}:${ICS_PORTS.controller}` },
    broker: `${a.broker}:${ICS_PORTS.mqtt}`,
    timeFactor,
    async killController(name) {
      const vm = await client.get(controllerVm(name));
      if (vm.pid === null) throw new Error(`${vm.name} has no VMM process`);
      process.kill(vm.pid, 'SIGKILL');
      await waitFor(async () => ['failed', 'stopped'].includes((await client.get(vm.id)).state), 30_000, `${vm.name} to be seen dead`);
    },
    async restartController(name) {
      await client.start(controllerVm(name));
    },
    async restartBroker(whileDown) {
      await client.stop('broker');
      await whileDown();
      await client.start('broker');
    },
    alarmHandlerRunning: async () => (await client.getService(ALARM_SERVICE)).status.running > 0,
  };
  if (log) target.log = log;
  return target;
}
