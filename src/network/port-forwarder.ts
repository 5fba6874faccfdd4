import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { UigniterError } from '../core/errors.js';

/**
 * Publishes a guest TCP port on a host address: a plain proxy in the daemon. The guest is
 * reached through the routed VM network, so the host needs no NAT rules.
 */
export async function forwardPort(hostAddr: string, hostPort: number, guestIp: string, guestPort: number): Promise<() => Promise<void>> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = createConnection({ host: guestIp, port: guestPort });
    sockets.add(inbound).add(outbound);
    const drop = (): void => {
      inbound.destroy();
      outbound.destroy();
      sockets.delete(inbound);
      sockets.delete(outbound);
    };
    inbound.on('error', drop).on('close', drop);
    outbound.on('error', drop).on('close', drop);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'EADDRINUSE'
          ? new UigniterError('conflict', `host port ${hostAddr}:${hostPort} is already in use`, 'ports')
          : new UigniterError('invalid_argument', `cannot listen on ${hostAddr}:${hostPort}: ${e.message}`, 'ports'),
      ),
    );
    server.listen(hostPort, hostAddr, () => resolve());
  });
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}
