import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { run } from '../../src/util/exec.js';
import { CLI, cli, cliEnv, freePort, removeHome, tempHome, waitFor } from '../helpers.js';

/** What a request made from the client namespace got back. */
interface Reply {
  status: number;
  body: string;
}

/**
 * A daemon listening off loopback demands its token from every client. The address is on a
 * veth pair this test makes: the host's end carries the daemon's address, the other end is
 * in a namespace of the test's own, where the client runs: a machine of its own, as far as
 * the daemon can tell, and nothing is sent beyond that pair.
 */
describe('a daemon on a non-loopback address', () => {
  const id = process.pid % 10000;
  const clientNs = `uiga-${process.pid}`;
  const hostEnd = `uah${id}`;
  const clientEnd = `uac${id}`;
  // TEST-NET-1 (RFC 5737): never routed anywhere, so no real host is ever addressed.
  const quad = (process.pid % 64) * 4;
  const daemonAddr = `192.0.2.${quad + 1}`;
  const clientAddr = `192.0.2.${quad + 2}`;
  // Outside the harness's ranges (172.29.n.0/24, 172.28.250-253.x/30).
  const subnet = `172.27.${process.pid % 250}.0/24`;
  const linkNet = `172.26.${process.pid % 250}.${(id % 64) * 4}/30`;
  const netns = `uigra-${process.pid}`;
  const bridge = `ura${id}`;
  const token = randomBytes(16).toString('hex');
  let home: string;
  let port: number;
  let daemon: ChildProcess | null = null;
  let output = '';
  const daemonArgs = (): string[] => ['daemon', '--host', daemonAddr, '--port', String(port), '--no-ui', '--netns', netns, '--bridge', bridge, '--subnet', subnet, '--link-net', linkNet];

  /** GET from inside the client namespace (a process of its own, as a remote client is). */
  const remoteGet = async (path: string, auth?: string): Promise<Reply> => {
    const script = `fetch(process.argv[1], { headers: process.argv[2] ? { authorization: process.argv[2] } : {}, signal: AbortSignal.timeout(5000) })
      .then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })), (e) => { console.error(String(e.cause ?? e)); process.exit(2); });`;
    const r = await run('ip', ['netns', 'exec', clientNs, process.execPath, '-e', script, `http://${daemonAddr}:${port}${path}`, auth ?? '']);
    return JSON.parse(r.stdout) as Reply;
  };

  before(async () => {
    home = await tempHome('uigniter-remote-auth-');
    port = await freePort();
    const routes = (await run('ip', ['-4', 'route', 'show'])).stdout;
    for (const net of [subnet, linkNet, `192.0.2.${quad}/30`]) assert.ok(!routes.includes(net.split('/')[0]!), `${net} is free on this host:\n${routes}`);
    await run('ip', ['netns', 'add', clientNs]);
    await run('ip', ['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', clientEnd, 'netns', clientNs]);
    await run('ip', ['addr', 'add', `${daemonAddr}/30`, 'dev', hostEnd]);
    await run('ip', ['link', 'set', hostEnd, 'up']);
    await run('ip', ['-n', clientNs, 'addr', 'add', `${clientAddr}/30`, 'dev', clientEnd]);
    await run('ip', ['-n', clientNs, 'link', 'set', clientEnd, 'up']);
    await run('ip', ['-n', clientNs, 'link', 'set', 'lo', 'up']);
  });

  after(async () => {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      const gone = new Promise<void>((resolve) => daemon!.once('exit', () => resolve()));
      daemon.kill('SIGTERM');
      await gone;
    }
    if (home) {
      await cli(home, ['daemon', '--cleanup', '--netns', netns, '--bridge', bridge, '--subnet', subnet, '--link-net', linkNet]);
      await removeHome(home);
    }
    // Deleting the namespace deletes the veth pair with it.
    await run('ip', ['netns', 'del', clientNs]).catch(() => undefined);
    await run('ip', ['link', 'del', hostEnd]).catch(() => undefined);
  });

  it('refuses to start without a token', async () => {
    const r = await cli(home, daemonArgs(), { env: { UIGNITER_TOKEN: '' }, timeoutMs: 30_000 });
    assert.notEqual(r.code, 0, `the daemon started without a token:\n${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`listening on ${daemonAddr.replace(/\./g, '\\.')} needs a bearer token`));
  });

  it('answers a remote client only with the token', async () => {
    daemon = spawn(process.execPath, [CLI, ...daemonArgs(), '--token', token], { env: cliEnv(home), stdio: ['ignore', 'pipe', 'pipe'] });
    daemon.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    daemon.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<never>((_, reject) => daemon!.once('exit', () => reject(new Error(`the daemon exited:\n${output}`))));
    await Promise.race([waitFor(async () => (await remoteGet('/healthz').catch(() => null))?.status === 200, 30_000, 'the daemon to answer the client namespace', 200), exited]);

    // Control: with the token, the same request from the same client succeeds.
    const ok = await remoteGet('/vm', `Bearer ${token}`);
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(JSON.parse(ok.body), { vms: [] });
    for (const auth of [undefined, `Bearer ${token}x`, `Bearer ${token.slice(1)}`, token, `Basic ${token}`]) {
      const r = await remoteGet('/vm', auth);
      assert.equal(r.status, 401, `authorization ${JSON.stringify(auth)}: ${r.status} ${r.body}`);
      assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'unauthorized');
    }
    // A change is refused before it reaches its route; with the token the same request
    // gets the route's own answer (no such VM).
    const stop = async (auth?: string): Promise<Reply> => {
      const script = `fetch(process.argv[1], { method: 'POST', headers: process.argv[2] ? { authorization: process.argv[2] } : {}, signal: AbortSignal.timeout(5000) })
        .then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })), (e) => { console.error(String(e.cause ?? e)); process.exit(2); });`;
      const r = await run('ip', ['netns', 'exec', clientNs, process.execPath, '-e', script, `http://${daemonAddr}:${port}/vm/ghost/stop`, auth ?? '']);
      return JSON.parse(r.stdout) as Reply;
    };
    const refused = await stop();
    assert.equal(refused.status, 401, refused.body);
    const routed = await stop(`Bearer ${token}`);
    assert.equal(routed.status, 404, routed.body);
    assert.equal((JSON.parse(routed.body) as { error: { code: string } }).error.code, 'not_found');
  });
});
