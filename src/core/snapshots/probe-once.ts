import { request } from 'node:http';
import { connect } from 'node:net';
import type { ReadyCheck } from '../models.js';

/**
 * One request to a VM's readiness check from the host, before it becomes a template: the
 * app has then served a request (lazy initialisation done) in every clone. Resolves with
 * the HTTP status (null for a TCP check or none).
 */
export function probeOnce(ip: string, ready: ReadyCheck, timeoutMs = 5000): Promise<number | null> {
  return new Promise((resolve, reject) => {
    if (ready.kind === 'none') return resolve(null);
    if (ready.kind === 'tcp') {
      const s = connect({ host: ip, port: ready.port, timeout: timeoutMs }, () => {
        s.destroy();
        resolve(null);
      });
      s.once('timeout', () => s.destroy(new Error(`no answer from ${ip}:${ready.port}`)));
      s.once('error', reject);
      return;
    }
    const req = request({ host: ip, port: ready.port, path: ready.path, timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? null));
    });
    req.once('timeout', () => req.destroy(new Error(`no answer from http://${ip}:${ready.port}${ready.path}`)));
    req.once('error', reject);
    req.end();
  });
}
