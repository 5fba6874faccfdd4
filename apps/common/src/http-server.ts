import { createServer, type Server } from 'node:http';
import type { Router } from './router.js';

/** Starts an HTTP server for `router` and resolves once it is listening. */
export function listen(router: Router, port: number, host: string): Promise<Server> {
  const server = createServer(router.listener);
  // Clients keep connections alive between polls; 5 s matches the default
  // that node's own http.Agent is told about through the Keep-Alive header.
  server.keepAliveTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** Stops accepting connections and waits (at most `graceMs`) for in-flight requests. */
export function closeServer(server: Server, graceMs = 3000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.closeAllConnections();
      resolve();
    }, graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
