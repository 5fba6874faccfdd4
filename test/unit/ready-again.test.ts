import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { readyAgain } from '../../src/core/pools/warm-up.js';

/** An app on 127.0.0.1 whose readiness check fails `failures` times (503), then passes. */
describe("a restored spare's readiness check, again", () => {
  let server: Server;
  let port = 0;
  let failures = 0;
  let asked = 0;
  before(async () => {
    server = createServer((req, res) => {
      asked++;
      if (req.url !== '/healthz') return void res.writeHead(404).end();
      if (failures > 0) {
        failures--;
        return void res.writeHead(503).end('connecting');
      }
      res.writeHead(200).end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('waits through 503s until the check passes', async () => {
    failures = 3;
    asked = 0;
    await readyAgain('127.0.0.1', { kind: 'http', port, path: '/healthz' }, 5000, 10);
    assert.equal(asked, 4, 'three 503s, then the 200');
  });

  it('gives up after its time with the last answer, and counts a 404 as not ready', async () => {
    await assert.rejects(readyAgain('127.0.0.1', { kind: 'http', port, path: '/missing' }, 200, 10), /did not pass again within 200 ms \(last: 404\)/);
  });

  it('has nothing to wait for with a TCP check or none', async () => {
    asked = 0;
    await readyAgain('127.0.0.1', { kind: 'tcp', port }, 200, 10);
    await readyAgain('127.0.0.1', { kind: 'none' }, 200, 10);
    assert.equal(asked, 0);
  });
});
