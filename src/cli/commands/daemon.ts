import type { Command } from 'commander';
import { defaultConfig, DEFAULT_PORT, DEFAULT_UI_PORT, type DaemonConfig } from '../../daemon/daemon-config.js';
import { resolveHome } from '../../util/paths.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];
const int = (v: string): number => Number(v);

export function registerDaemon(program: Command): void {
  program
    .command('daemon')
    .description('run uigniterd: the REST API, VM lifecycle and the VM network (needs root)')
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'TCP port', int, DEFAULT_PORT)
    .option('--ui-port <port>', 'port of the dashboard, which serves the whole API too (browsers refuse 6666); 0: any free port', int, DEFAULT_UI_PORT)
    .option('--no-ui', 'serve no dashboard port')
    .option('--socket <path>', 'also listen on a unix socket')
    .option('--token <token>', 'bearer token clients must send (required off loopback; or UIGNITER_TOKEN)')
    .option('--netns <name>', 'network namespace of the VM network', 'uigniter')
    .option('--bridge <name>', 'bridge in that namespace', 'uig0')
    .option('--subnet <cidr>', 'guest subnet (the bridge takes the first address; a /22 holds 1021 VMs)', '172.30.0.0/22')
    .option('--link-net <cidr>', '/30 between the host and the namespace (default: last /30 of the /16)')
    .option('--allow-host-port <port>', 'host TCP port guests may reach on the gateway side (repeatable)', collect, [])
    .option('--egress', 'let guests reach addresses beyond the host (outbound NAT; turns on net.ipv4.ip_forward while the daemon runs)')
    .option('--max-vms <n>', 'most VMs, stopped ones included (default: 1000)', int)
    .option('--max-vcpus <n>', 'most vCPUs in use: booting VMs count theirs, running ones the cores they burn (default: 16 per core)', int)
    .option('--max-mem <MiB>', 'most memory in use: running VMs count what they hold (PSS), booting ones their size (default: 90% of the host)', int)
    .option('--min-free-mem <MiB>', 'refuse a VM that would leave the host less available memory (default: 5% of the host, at least 512)', int)
    .option('--ready-timeout <s>', 'seconds a VM gets to become ready', int, 90)
    .option('--no-templates', 'make no new templates (boot=auto still restores from existing ones)')
    .option('--no-confine', 'run the VMMs unconfined (default: each QEMU chrooted, as its own uid, with seccomp and a cgroup; or UIGNITER_CONFINE=off)')
    .option('--stop-vms-on-exit', 'stop every VM when the daemon stops (default: leave them to be adopted)')
    .option('--cleanup', 'remove everything a daemon created on this host (VM processes, namespace, veth, route) and exit')
    .action(async (o: Record<string, string | number | boolean | string[] | undefined>) => {
      const home = resolveHome(program.opts<{ home?: string }>().home);
      const cfg: DaemonConfig = defaultConfig(home);
      cfg.host = o.host as string;
      cfg.port = o.port as number;
      cfg.socket = (o.socket as string | undefined) ?? null;
      cfg.uiPort = o.ui === false ? null : (o.uiPort as number);
      cfg.token = (o.token as string | undefined) ?? cfg.token;
      cfg.network = {
        ...cfg.network,
        netns: o.netns as string,
        bridge: o.bridge as string,
        subnet: o.subnet as string,
        ...(o.linkNet ? { linkNet: o.linkNet as string } : {}),
        allowHostPorts: (o.allowHostPort as string[]).map(Number),
        egress: Boolean(o.egress),
      };
      if (o.maxVms !== undefined) cfg.limits.maxVms = o.maxVms as number;
      if (o.maxVcpus !== undefined) cfg.limits.maxVcpus = o.maxVcpus as number;
      if (o.maxMem !== undefined) cfg.limits.maxMemMiB = o.maxMem as number;
      if (o.minFreeMem !== undefined) cfg.limits.minFreeMiB = o.minFreeMem as number;
      cfg.readyTimeoutMs = (o.readyTimeout as number) * 1000;
      cfg.stopVmsOnExit = Boolean(o.stopVmsOnExit);
      cfg.templates = o.templates !== false;
      if (o.confine === false) cfg.confine = false;

      if (o.cleanup) {
        const { cleanupHost } = await import('../../daemon/daemon.js');
        await cleanupHost(cfg, (m) => process.stderr.write(`uigniter: ${m}\n`));
        return;
      }
      const { startDaemon, faultsFromEnv } = await import('../../daemon/daemon.js');
      const daemon = await startDaemon(cfg, { faults: faultsFromEnv(process.env) });
      process.stderr.write(`uigniter: API on ${daemon.url}${daemon.uiUrl ? `, dashboard on ${daemon.uiUrl}` : ''}\n`);
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        daemon.app.log.info({ signal }, 'shutting down');
        void daemon.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });
}
