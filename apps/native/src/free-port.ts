import { createServer } from 'node:net';

/**
 * Asks the kernel for an unused loopback port. Another process could take it
 * before the service binds it, but ephemeral ports are handed out in turn,
 * so a clash is far less likely than with any fixed port range.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
