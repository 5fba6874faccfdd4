import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it, type TestContext } from 'node:test';
import { Agent, request } from 'undici';
import { GatewayError } from '../../src/gateway/gateway-error.js';
import type { Replica, ReplicaSource } from '../../src/gateway/gateway-types.js';
import { ReplicaBalancer } from '../../src/gateway/replica-balancer.js';
import { HttpServiceGateway } from '../../src/gateway/service-gateway.js';
import { freePort } from '../../src/util/net.js';

const SERVICE = 'web';
/** A gateway that never answers fails its test instead of hanging the file. */
const LIMIT = { timeout: 15_000 };

/** A replica: a plain HTTP server on loopback that answers its id, unless told otherwise. */
interface TestReplica {
  id: string;
  replica: Replica;
  server: Server;
  /** Requests it received. */
  seen: number;
  /** Connections open to it now. */
  connections: number;
  /** Dies as a VM would: every connection cut, the port closed. */
  kill(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, self: TestReplica) => void;

const answerId: Handler = (req, res, self) => {
  req.resume();
  res.end(self.id);
};

async function startReplica(t: TestContext, id: string, handler: Handler = answerId): Promise<TestReplica> {
  const server = createServer();
  const self: TestReplica = {
    id,
    server,
    seen: 0,
    connections: 0,
    replica: { vmId: id, ip: '127.0.0.1', port: 0 },
    kill: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (socket: Socket) => {
    self.connections++;
    socket.once('close', () => self.connections--);
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    self.seen++;
    handler(req, res, self);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  self.replica.port = (server.address() as { port: number }).port;
  t.after(() => (server.listening ? self.kill() : undefined));
  return self;
}

/** A ReplicaSource the test drives: the ready set is `replicas`, wake() does `onWake`. */
class FakeSource implements ReplicaSource {
  replicas: Replica[] = [];
  drainingReplicas: Replica[] = [];
  wakeCalls = 0;
  onWake: () => Promise<void> = async () => undefined;

  ready(): Replica[] {
    return this.replicas;
  }

  draining(): Replica[] {
    return this.drainingReplicas;
  }

  wake(): Promise<void> {
    this.wakeCalls++;
    return this.onWake();
  }
}

interface Setup {
  gateway: HttpServiceGateway;
  source: FakeSource;
  url: string;
  hostPort: number;
  client: Agent;
}

async function setup(t: TestContext, open: { queueLimit?: number; holdTimeoutMs?: number } = {}): Promise<Setup> {
  const source = new FakeSource();
  const gateway = new HttpServiceGateway(source);
  const { url, hostPort } = await gateway.open(SERVICE, { hostAddr: '127.0.0.1', queueLimit: open.queueLimit ?? 100, holdTimeoutMs: open.holdTimeoutMs ?? 30_000 });
  const client = new Agent();
  t.after(async () => {
    await gateway.closeAll();
    await client.close();
  });
  return { gateway, source, url, hostPort, client };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

async function send(s: Setup, path = '/', opts: { method?: 'GET' | 'POST'; body?: string | Buffer } = {}): Promise<Answer> {
  const r = await request(`${s.url}${path}`, { dispatcher: s.client, method: opts.method ?? 'GET', body: opts.body ?? null });
  return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
}

function errorOf(a: Answer): { code: string; message: string } {
  return (JSON.parse(a.text) as { error: { code: string; message: string } }).error;
}

/** Waits for a condition the gateway reaches on its own (requests queued), polling its stats. */
async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** 'connected', or the error code of a TCP connection to a loopback port. */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    sock.on('connect', () => {
      sock.destroy();
      resolve('connected');
    });
    sock.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('replica balancer', () => {
  const replicas: Replica[] = ['a', 'b', 'c'].map((vmId, i) => ({ vmId, ip: '127.0.0.1', port: 1000 + i }));

  it('takes turns among replicas with as many requests in flight', () => {
    const b = new ReplicaBalancer(1000);
    const picks = Array.from({ length: 6 }, () => b.pick(replicas, new Set())?.vmId);
    assert.deepEqual(picks, ['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('picks the replica with the fewest requests in flight, never one already tried', () => {
    const b = new ReplicaBalancer(1000);
    b.acquire('a');
    b.acquire('a');
    b.acquire('b');
    assert.equal(b.pick(replicas, new Set())?.vmId, 'c');
    assert.equal(b.pick(replicas, new Set(['c']))?.vmId, 'b');
    b.release('a');
    b.release('a');
    assert.equal(b.pick(replicas, new Set(['c']))?.vmId, 'a');
    assert.equal(b.pick(replicas, new Set(['a', 'b', 'c'])), undefined);
  });

  it('passes over a replica that failed to connect while others remain, until ejectMs passed', () => {
    let now = 0;
    const b = new ReplicaBalancer(1000, () => now);
    b.eject('a');
    b.eject('b');
    const picks = Array.from({ length: 3 }, () => b.pick(replicas, new Set())?.vmId);
    assert.deepEqual(picks, ['c', 'c', 'c']);
    assert.equal(b.pick(replicas, new Set(['c']))?.vmId !== undefined, true, 'an ejected replica is still better than none');
    now = 1000;
    assert.deepEqual(new Set(Array.from({ length: 3 }, () => b.pick(replicas, new Set())?.vmId)), new Set(['a', 'b', 'c']));
  });
});

describe('service gateway', () => {
  it('opens on a free port, keeps it on a re-open, and refuses a port in use', LIMIT, async (t) => {
    const s = await setup(t);
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const again = await s.gateway.open(SERVICE, { hostAddr: '127.0.0.1', queueLimit: 5, holdTimeoutMs: 100 });
    assert.equal(again.hostPort, s.hostPort);
    await assert.rejects(
      s.gateway.open('other', { hostAddr: '127.0.0.1', hostPort: s.hostPort, queueLimit: 5, holdTimeoutMs: 100 }),
      (e: unknown) => e instanceof GatewayError && e.code === 'conflict' && /already in use/.test(e.message),
    );
    assert.equal(s.gateway.stats('other'), null);
    assert.deepEqual(s.gateway.stats(SERVICE), { service: SERVICE, inflight: 0, queued: 0, requests: 0, failures: 0, retries: 0 });
  });

  it('moves to another port when re-opened with one, and keeps its counters', LIMIT, async (t) => {
    const r = await startReplica(t, 'vm-1');
    const s = await setup(t);
    s.source.replicas = [r.replica];
    assert.equal((await send(s)).status, 200);
    const wanted = await freePort();
    const moved = await s.gateway.open(SERVICE, { hostAddr: '127.0.0.1', hostPort: wanted, queueLimit: 5, holdTimeoutMs: 100 });
    assert.deepEqual(moved, { url: `http://127.0.0.1:${wanted}`, hostPort: wanted });
    assert.equal(await connectOutcome(s.hostPort), 'ECONNREFUSED');
    assert.equal((await send({ ...s, url: moved.url })).text, 'vm-1');
    assert.equal(s.gateway.stats(SERVICE)?.requests, 2);
  });

  it('passes headers both ways without hop-by-hop ones, and says which replica answered', LIMIT, async (t) => {
    const r = await startReplica(t, 'vm-h', (req, res) => {
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.setHeader('x-replica-custom', 'yes');
      res.setHeader('connection', 'x-resp-hop');
      res.setHeader('x-resp-hop', 'gone');
      res.end(JSON.stringify(req.headers));
    });
    const s = await setup(t);
    s.source.replicas = [r.replica];
    // node:http as the client: undici refuses to send a Connection header that lists other headers.
    const answer = await new Promise<{ headers: IncomingMessage['headers']; body: string }>((resolve, reject) => {
      const req = httpRequest(`${s.url}/h`, { headers: { 'x-test': 'v', connection: 'keep-alive, x-hop', 'x-hop': 'secret', 'x-forwarded-for': '10.0.0.9' } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ headers: res.headers, body }));
      });
      req.on('error', reject).end();
    });
    const seen = JSON.parse(answer.body) as Record<string, string>;
    assert.equal(seen['x-test'], 'v');
    assert.equal(seen['x-hop'], undefined, 'a header named in Connection is not forwarded');
    assert.equal(seen['x-forwarded-for'], '10.0.0.9, 127.0.0.1');
    assert.equal(seen['x-forwarded-host'], `127.0.0.1:${s.hostPort}`);
    assert.equal(seen.host, `127.0.0.1:${r.replica.port}`);
    assert.equal(answer.headers['x-uigniter-replica'], 'vm-h');
    assert.equal(answer.headers['x-replica-custom'], 'yes');
    assert.deepEqual(answer.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(answer.headers['x-resp-hop'], undefined);
  });

  it('round-trips a 1 MiB body intact', LIMIT, async (t) => {
    const r = await startReplica(t, 'vm-echo', (req, res) => req.pipe(res));
    const s = await setup(t);
    s.source.replicas = [r.replica];
    const payload = randomBytes(1 << 20);
    const res = await request(`${s.url}/echo`, { dispatcher: s.client, method: 'POST', body: payload });
    const back = Buffer.from(await res.body.arrayBuffer());
    assert.equal(res.statusCode, 200);
    assert.equal(back.length, payload.length);
    assert.equal(sha256(back), sha256(payload));
  });

  it('streams both ways: each chunk is echoed back before the client sends the next', LIMIT, async (t) => {
    const r = await startReplica(t, 'vm-duplex', (req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.flushHeaders();
      req.on('data', (c: Buffer) => res.write(c));
      req.on('end', () => res.end());
    });
    const s = await setup(t);
    s.source.replicas = [r.replica];
    const up = new PassThrough();
    const pending = request(`${s.url}/duplex`, { dispatcher: s.client, method: 'POST', body: up });
    up.write('ping-0');
    const res = await pending;
    const chunks = res.body[Symbol.asyncIterator]();
    // A gateway that buffered either body would never echo ping-0 while the request is open.
    for (let i = 0; i < 5; i++) {
      let got = '';
      while (got.length < `ping-${i}`.length) got += String((await chunks.next()).value);
      assert.equal(got, `ping-${i}`);
      if (i < 4) up.write(`ping-${i + 1}`);
    }
    up.end();
    assert.equal((await chunks.next()).done, true);
  });

  it('sends fewer requests to a slow replica (least in flight)', LIMIT, async (t) => {
    // The slow replica answers nothing until the run is over: its requests in flight only
    // grow. Least in flight sends it one only while it has no more than the fast one, so
    // with W requests at a time it gets about W/2; round robin would give it half of them.
    const TOTAL = 100;
    const WORKERS = 20;
    const parked: ServerResponse[] = [];
    let answered = 0;
    // Also released once every client waits on it, so that a wrong balancer fails rather than hangs.
    const releaseWhenStuck = (): void => {
      if (parked.length >= WORKERS || answered + parked.length === TOTAL) for (const res of parked.splice(0)) res.end('vm-slow');
    };
    const fast = await startReplica(t, 'vm-fast');
    const slow = await startReplica(t, 'vm-slow', (req, res) => {
      req.resume();
      parked.push(res);
      releaseWhenStuck();
    });
    const s = await setup(t);
    s.source.replicas = [slow.replica, fast.replica];
    let issued = 0;
    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        while (issued < TOTAL) {
          issued++;
          const a = await send(s);
          assert.equal(a.status, 200);
          answered++;
          releaseWhenStuck();
        }
      }),
    );
    assert.equal(fast.seen + slow.seen, TOTAL);
    assert.ok(slow.seen <= WORKERS / 2 + 2, `slow ${slow.seen}, fast ${fast.seen}`);
  });

  it('loses no GET of 200 concurrent ones when a replica dies mid-run: they are retried', LIMIT, async (t) => {
    const a = await startReplica(t, 'vm-a');
    const c = await startReplica(t, 'vm-c');
    // vm-b answers 9 requests, then holds the 10th and dies: that one was sent and never answered.
    const b = await startReplica(t, 'vm-b', (req, res, self) => {
      req.resume();
      if (self.seen < 10) res.end(self.id);
      else if (self.seen === 10) setImmediate(() => void self.kill());
    });
    const s = await setup(t);
    // The service layer has not noticed: vm-b stays in the ready set throughout.
    s.source.replicas = [a.replica, b.replica, c.replica];
    const answers = await Promise.all(Array.from({ length: 200 }, () => send(s)));
    assert.deepEqual(
      answers.filter((x) => x.status !== 200),
      [],
    );
    assert.ok(b.seen >= 10, `vm-b saw ${b.seen} requests: it never died`);
    assert.equal(answers.filter((x) => x.headers['x-uigniter-replica'] === 'vm-b').length, 9);
    const stats = s.gateway.stats(SERVICE)!;
    assert.ok(stats.retries >= 1, `retries ${stats.retries}`);
    assert.equal(stats.failures, 0);
    assert.equal(stats.requests, 200);
    assert.equal(stats.inflight, 0);
  });

  it('answers 502 to a request with a body whose replica dies under it, without retrying it', LIMIT, async (t) => {
    // Both replicas die on such a request, once its body started to arrive: a retry would
    // reach the second one and count.
    const dying: Handler = (req, res, self) => (req.method === 'GET' ? answerId(req, res, self) : req.once('data', () => req.socket.destroy()));
    const d = await startReplica(t, 'vm-d', dying);
    const e = await startReplica(t, 'vm-e', dying);
    const s = await setup(t);
    s.source.replicas = [d.replica, e.replica];
    const answer = await send(s, '/upload', { method: 'POST', body: 'hello' });
    assert.equal(answer.status, 502);
    assert.equal(errorOf(answer).code, 'bad_gateway');
    assert.match(errorOf(answer).message, /^replica vm-[de] of service web failed/);
    assert.equal(d.seen + e.seen, 1);
    // A PUT is idempotent, but its body is streamed, not kept: it is not sent twice either.
    // 1 MiB in chunks, so the replica dies with most of it unsent: the 502 must still reach the client.
    const chunks = Readable.from((function* () {
      for (let i = 0; i < 64; i++) yield Buffer.alloc(16 << 10, i);
    })());
    const put = await request(`${s.url}/upload`, { dispatcher: s.client, method: 'PUT', body: chunks });
    assert.equal(put.statusCode, 502);
    assert.equal(put.headers.connection, 'close');
    assert.equal(((await put.body.json()) as { error: { code: string } }).error.code, 'bad_gateway');
    assert.equal(d.seen + e.seen, 2);
    // The client is still sending that body when the 502 comes: the connection must not be reused.
    assert.equal((await send(s)).status, 200);
    assert.deepEqual(s.gateway.stats(SERVICE), { service: SERVICE, inflight: 0, queued: 0, requests: 3, failures: 2, retries: 0 });
  });

  it('lets a draining replica finish its requests, sends it no new one, and cuts one that leaves without draining', LIMIT, async (t) => {
    // Each replica holds a POST until the test lets it answer.
    const release = new Map<string, () => void>();
    const holding: Handler = (req, res, self) => {
      if (req.method === 'GET') return answerId(req, res, self);
      req.resume();
      const d = deferred();
      release.set(self.id, d.resolve);
      void d.promise.then(() => res.end(`${self.id} done`));
    };
    const a = await startReplica(t, 'vm-a', holding);
    const b = await startReplica(t, 'vm-b', holding);
    const c = await startReplica(t, 'vm-c', holding);
    const s = await setup(t);
    s.source.replicas = [b.replica];
    const onB = send(s, '/work', { method: 'POST', body: 'x' });
    await until('the POST to reach vm-b', () => b.seen === 1);
    // A scale-down: b drains, a takes the new requests.
    s.source.replicas = [a.replica];
    s.source.drainingReplicas = [b.replica];
    s.gateway.replicasChanged(SERVICE);
    assert.equal((await send(s)).text, 'vm-a', 'a new request goes to the ready replica only');
    assert.equal(b.seen, 1, 'the draining replica got no new request');
    // What a pausing scale-down waits on: one request under way to b, none to a (answered).
    assert.equal(s.gateway.inflightTo(SERVICE, 'vm-b'), 1);
    assert.equal(s.gateway.inflightTo(SERVICE, 'vm-a'), 0);
    release.get('vm-b')!();
    const answered = await onB;
    assert.equal(answered.status, 200, answered.text);
    assert.equal(answered.text, 'vm-b done', 'the request under way on the draining replica finished');
    assert.equal(s.gateway.inflightTo(SERVICE, 'vm-b'), 0, 'none once it is answered');
    await until('the drained pool to close its connections', () => b.connections === 0);
    s.source.drainingReplicas = [];
    s.gateway.replicasChanged(SERVICE);
    // The control: a replica that leaves without draining (died, forced off) has its
    // requests cut at once, and a POST is not retried: 502.
    s.source.replicas = [c.replica];
    s.gateway.replicasChanged(SERVICE);
    const onC = send(s, '/work', { method: 'POST', body: 'y' });
    await until('the POST to reach vm-c', () => c.seen === 1);
    s.source.replicas = [a.replica];
    s.gateway.replicasChanged(SERVICE);
    const cut = await onC;
    assert.equal(cut.status, 502, cut.text);
    release.get('vm-c')!();
  });

  it('cuts the response of a replica that dies in the middle of it, and counts a failure', LIMIT, async (t) => {
    const r = await startReplica(t, 'vm-cut', (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-length': 1000 });
      res.write('x'.repeat(100), () => res.socket?.destroy());
    });
    const s = await setup(t);
    s.source.replicas = [r.replica];
    const res = await request(s.url, { dispatcher: s.client });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-uigniter-replica'], 'vm-cut');
    await assert.rejects(res.body.text());
    await until('the failure counted', () => s.gateway.stats(SERVICE)?.failures === 1);
    assert.deepEqual(s.gateway.stats(SERVICE), { service: SERVICE, inflight: 0, queued: 0, requests: 1, failures: 1, retries: 0 });
  });

  it('drops a held request whose client left, without counting a failure', LIMIT, async (t) => {
    const s = await setup(t);
    const abort = new AbortController();
    const pending = request(s.url, { dispatcher: s.client, signal: abort.signal });
    await until('1 request queued', () => s.gateway.stats(SERVICE)?.queued === 1);
    abort.abort();
    await assert.rejects(pending);
    await until('the queue emptied', () => s.gateway.stats(SERVICE)?.queued === 0);
    assert.deepEqual(s.gateway.stats(SERVICE), { service: SERVICE, inflight: 0, queued: 0, requests: 1, failures: 0, retries: 0 });
  });

  it('holds requests while no replica is ready, wakes the service once, and forwards them when one is', LIMIT, async (t) => {
    const s = await setup(t);
    const held = Array.from({ length: 5 }, () => send(s));
    await until('5 requests queued', () => s.gateway.stats(SERVICE)?.queued === 5);
    assert.equal(s.source.wakeCalls, 1);
    assert.equal(s.gateway.stats(SERVICE)?.inflight, 5);
    s.gateway.replicasChanged(SERVICE); // still none ready: they stay held
    assert.equal(s.gateway.stats(SERVICE)?.queued, 5);
    const r = await startReplica(t, 'vm-woken');
    s.source.replicas = [r.replica];
    s.gateway.replicasChanged(SERVICE);
    const answers = await Promise.all(held);
    assert.deepEqual(
      answers.map((x) => [x.status, x.text]),
      Array.from({ length: 5 }, () => [200, 'vm-woken']),
    );
    assert.equal(s.source.wakeCalls, 1);
    assert.deepEqual(s.gateway.stats(SERVICE), { service: SERVICE, inflight: 0, queued: 0, requests: 5, failures: 0, retries: 0 });
  });

  it('answers 503 to a request held longer than holdTimeoutMs', LIMIT, async (t) => {
    const s = await setup(t, { holdTimeoutMs: 150 });
    const started = Date.now();
    const answer = await send(s);
    assert.ok(Date.now() - started >= 140, `answered after ${Date.now() - started} ms`);
    assert.equal(answer.status, 503);
    assert.equal(answer.headers['retry-after'], '1');
    assert.deepEqual(errorOf(answer), { code: 'unavailable', message: 'no replica of service web became ready within 150 ms' });
    assert.equal(s.source.wakeCalls, 1);
    assert.equal(s.gateway.stats(SERVICE)?.failures, 1);
  });

  it('answers 503 at once when the queue is full', LIMIT, async (t) => {
    const s = await setup(t, { queueLimit: 2 });
    const held = [send(s), send(s)];
    await until('2 requests queued', () => s.gateway.stats(SERVICE)?.queued === 2);
    const answer = await send(s);
    assert.equal(answer.status, 503);
    assert.ok(answer.headers['retry-after']);
    assert.deepEqual(errorOf(answer), { code: 'unavailable', message: 'the queue of service web is full (2 requests)' });
    assert.equal(s.gateway.stats(SERVICE)?.queued, 2);
    assert.equal(s.source.wakeCalls, 1);
    await s.gateway.close(SERVICE);
    for (const a of await Promise.all(held)) assert.equal(a.status, 503);
  });

  it('answers 503 with the message of a wake that was refused, and wakes again for the next request', LIMIT, async (t) => {
    const s = await setup(t);
    const wake = deferred();
    s.source.onWake = () => wake.promise;
    const held = Array.from({ length: 3 }, () => send(s));
    await until('3 requests queued', () => s.gateway.stats(SERVICE)?.queued === 3);
    wake.reject(new Error('service web reached its limit of 4 replicas'));
    for (const a of await Promise.all(held)) {
      assert.equal(a.status, 503);
      assert.deepEqual(errorOf(a), { code: 'unavailable', message: 'service web reached its limit of 4 replicas' });
    }
    assert.equal(s.source.wakeCalls, 1);
    s.source.onWake = () => Promise.reject(new Error('still full'));
    assert.equal(errorOf(await send(s)).message, 'still full');
    assert.equal(s.source.wakeCalls, 2);
  });

  it('close() answers held requests 503, stops listening and ends its connections to replicas', LIMIT, async (t) => {
    const r = await startReplica(t, 'vm-1');
    const s = await setup(t);
    s.source.replicas = [r.replica];
    assert.equal((await send(s)).status, 200);
    assert.equal(r.connections, 1, 'the gateway keeps its connection to the replica alive');
    // The replica leaves without the gateway being told (a settled wake would tell it):
    // only close() can end that connection.
    s.source.replicas = [];
    s.source.onWake = () => new Promise<void>(() => undefined);
    const held = [send(s), send(s)];
    await until('2 requests queued', () => s.gateway.stats(SERVICE)?.queued === 2);
    await s.gateway.close(SERVICE);
    for (const a of await Promise.all(held)) {
      assert.equal(a.status, 503);
      assert.deepEqual(errorOf(a), { code: 'unavailable', message: 'the entry point of service web is closed' });
    }
    assert.equal(s.gateway.stats(SERVICE), null);
    assert.equal(await connectOutcome(s.hostPort), 'ECONNREFUSED');
    // Well before undici's own idle timeout (4 s) would close it.
    await until('the connection to the replica closed', () => r.connections === 0, 1000);
  });

  it('leaves no server, socket or timer behind (the test process can exit)', async () => {
    // Every test above closed its gateway, client and replicas; the undici pools must be gone too.
    // Handles closed just before (servers, sockets) are released in the loop's close phase,
    // which runs before the next turn's timers.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const left = process.getActiveResourcesInfo().filter((r) => /TCP|Timeout/.test(r));
    assert.deepEqual(left, []);
  });
});
