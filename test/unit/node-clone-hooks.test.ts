import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nodeHooksSource } from '../../src/images/runtime-layer.js';

/*
 * The hooks run in a real `node --require <hooks>` child whose fd 3 is a socket pair
 * (stdio 'pipe'), as the guest init sets it up. The child's pool source is a file of known
 * random bytes (UIGNITER_HOOKS_ENTROPY), so a test can tell bytes drawn from the pool (found
 * in the file) from Node's own (never found there). Math.random is made reproducible with
 * V8's --random-seed, so a hooked run can be compared with a plain one.
 */

const HOOKS = nodeHooksSource();
const SEED = '--random-seed=4242';

// Answers commands on stdin with one JSON line each: what the random functions give now.
const CJS_SCRIPT = String.raw`
const crypto = require('node:crypto');
const hex = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');
const cb = (f) => new Promise((res, rej) => f((e, v) => (e ? rej(e) : res(v))));
async function sample() {
  return {
    randomBytes: crypto.randomBytes(16).toString('hex'),
    randomBytesCb: (await cb((k) => crypto.randomBytes(16, k))).toString('hex'),
    pseudoRandomBytes: crypto.pseudoRandomBytes(16).toString('hex'),
    randomFillSync: hex(crypto.randomFillSync(Buffer.alloc(16))),
    randomFillSyncRegion: hex(crypto.randomFillSync(new Uint32Array(6), 1, 4)),
    randomFill: hex(await cb((k) => crypto.randomFill(new Uint16Array(12), 2, k))),
    getRandomValues: hex(globalThis.crypto.getRandomValues(new Uint8Array(16))),
    moduleGetRandomValues: hex(crypto.getRandomValues(new Uint8Array(16))),
    webRandomUUID: globalThis.crypto.randomUUID(),
    randomUUID: crypto.randomUUID(),
    randomInt: [crypto.randomInt(1000000), crypto.randomInt(-1000000, -999990), crypto.randomInt(2 ** 40)],
    randomIntCb: await cb((k) => crypto.randomInt(10, 1000000, k)),
    math: [Math.random(), Math.random(), Math.random()],
  };
}
function errors() {
  const calls = {
    bytesNegative: () => crypto.randomBytes(-1),
    bytesString: () => crypto.randomBytes('x'),
    bytesBadCallback: () => crypto.randomBytes(4, 'nope'),
    fillSyncType: () => crypto.randomFillSync('x'),
    fillSyncOffset: () => crypto.randomFillSync(Buffer.alloc(4), 5),
    fillNoCallback: () => crypto.randomFill(Buffer.alloc(4)),
    intOrder: () => crypto.randomInt(5, 1),
    intFloat: () => crypto.randomInt(1.5),
    intRange: () => crypto.randomInt(0, 2 ** 49),
    uuidOptions: () => crypto.randomUUID({ disableEntropyCache: 'x' }),
    valuesFloat: () => crypto.getRandomValues(new Float32Array(2)),
    valuesQuota: () => globalThis.crypto.getRandomValues(new Uint8Array(65537)),
    valuesUnbound: () => { const g = globalThis.crypto.getRandomValues; return g(new Uint8Array(2)); },
  };
  const out = {};
  for (const [k, f] of Object.entries(calls)) {
    try { f(); out[k] = 'no error'; } catch (e) { out[k] = [e.name, e.code, e.message].join(' | '); }
  }
  return out;
}
const meta = () => ({
  env: process.env.UIGNITER_HOOKS_FD ?? null,
  entropyEnv: process.env.UIGNITER_HOOKS_ENTROPY ?? null,
  listeners: process.listenerCount('SIGURG'),
  names: [crypto.randomBytes.name, crypto.randomUUID.name, crypto.randomInt.length, Math.random.name],
});
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
require('node:readline').createInterface({ input: process.stdin }).on('line', async (cmd) => {
  if (cmd === 'sample') out(await sample());
  else if (cmd === 'errors') out(errors());
  else if (cmd === 'meta') out(meta());
  else if (cmd === 'exit') process.exit(0);
});
out({ started: true });
`;

// The same through `import`, which binds to node:crypto's ESM exports.
const ESM_SCRIPT = String.raw`
import { randomUUID, randomBytes, getRandomValues, randomInt } from 'node:crypto';
import { createInterface } from 'node:readline';
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
createInterface({ input: process.stdin }).on('line', (cmd) => {
  if (cmd === 'sample') out({
    randomBytes: randomBytes(16).toString('hex'),
    getRandomValues: Buffer.from(getRandomValues(new Uint8Array(16))).toString('hex'),
    randomUUID: randomUUID(),
    randomInt: [randomInt(1000000), randomInt(1000000)],
  });
  else if (cmd === 'exit') process.exit(0);
});
out({ started: true });
`;

// Imports node:crypto first and loads the hooks only then (as if the app had imported it
// before the hooks ran): the imported bindings still see the wrappers only if the hooks
// brought the ESM exports up to date (module.syncBuiltinESMExports).
const ESM_LATE_SCRIPT = String.raw`
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
const before = randomBytes;
createRequire(import.meta.url)(process.env.HOOKS_PATH);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
createInterface({ input: process.stdin }).on('line', (cmd) => {
  if (cmd === 'sample') out({ randomBytes: randomBytes(16).toString('hex'), rebound: randomBytes !== before });
  else if (cmd === 'exit') process.exit(0);
});
out({ started: true });
`;

type Sample = Record<string, unknown> & {
  randomBytes: string;
  randomBytesCb: string;
  pseudoRandomBytes: string;
  randomFillSync: string;
  randomFillSyncRegion: string;
  randomFill: string;
  getRandomValues: string;
  moduleGetRandomValues: string;
  webRandomUUID: string;
  randomUUID: string;
  randomInt: number[];
  randomIntCb: number;
  math: number[];
};

interface ChildOptions {
  /** false: plain node, no hooks at all. */
  hooks?: boolean;
  /** The script loads the hooks itself (HOOKS_PATH) instead of --require. */
  late?: boolean;
  esm?: boolean;
  fd?: string;
  entropy?: string;
}

/** A child node with a line-oriented stdout and fd 3 as the hooks' channel. */
class Child {
  readonly proc: ChildProcess;
  private lines: string[] = [];
  private waiters: (() => void)[] = [];
  private channelBytes = '';
  private stderr = '';
  /** The hooks announced at load that they listen to SIGURG (their first line, "U"). */
  announced = false;

  constructor(script: string, opts: ChildOptions) {
    const args = [SEED];
    if (opts.hooks !== false && !opts.late) args.push('--require', HOOKS);
    if (opts.esm) args.push('--input-type=module');
    args.push('-e', script);
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
    if (opts.hooks !== false) env.UIGNITER_HOOKS_FD = opts.fd ?? '3';
    if (opts.entropy) env.UIGNITER_HOOKS_ENTROPY = opts.entropy;
    if (opts.late) env.HOOKS_PATH = HOOKS;
    this.proc = spawn(process.execPath, args, { env, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    let partial = '';
    this.proc.stdout!.on('data', (c: Buffer) => {
      partial += c.toString();
      const parts = partial.split('\n');
      partial = parts.pop()!;
      this.lines.push(...parts);
      this.wake();
    });
    this.proc.stderr!.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.channel.on('data', (c: Buffer) => {
      this.channelBytes += c.toString('latin1');
      if (!this.announced && this.channelBytes.startsWith('U\n')) {
        this.announced = true;
        this.channelBytes = this.channelBytes.slice(2);
      }
      this.wake();
    });
    this.channel.on('error', () => {});
  }

  get channel(): Socket {
    return this.proc.stdio[3] as Socket;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private async until<T>(what: string, get: () => T | undefined): Promise<T> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const v = get();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stderr: ${this.stderr}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  /** Lines received and not yet read. */
  get waiting(): number {
    return this.lines.length;
  }

  async line(): Promise<Record<string, unknown>> {
    const l = await this.until('a line from the child', () => this.lines.shift());
    return JSON.parse(l) as Record<string, unknown>;
  }

  async ask<T = Record<string, unknown>>(cmd: string): Promise<T> {
    this.proc.stdin!.write(`${cmd}\n`);
    return (await this.line()) as T;
  }

  /** SIGURG, as the init sends before a snapshot; resolves with the acknowledgement. */
  /** Resolves once the hooks have announced SIGURG; rejects after 10 s without it. */
  async announcement(): Promise<void> {
    await this.until('the hooks to announce SIGURG ("U")', () => (this.announced ? true : undefined));
  }

  async freeze(): Promise<string> {
    // The init sends SIGURG only to hooks that announced they listen to it.
    await this.announcement();
    this.proc.kill('SIGURG');
    return this.until('the hooks to acknowledge', () => (this.channelBytes.includes('\n') ? this.takeChannel() : undefined));
  }

  private takeChannel(): string {
    const s = this.channelBytes;
    this.channelBytes = '';
    return s;
  }

  reply(line: 'T' | 'R'): void {
    this.channel.write(`${line}\n`);
  }

  async exit(): Promise<number | null> {
    if (this.proc.exitCode !== null) return this.proc.exitCode;
    const done = new Promise<number | null>((res) => this.proc.on('exit', (code) => res(code)));
    this.proc.stdin!.write('exit\n');
    return done;
  }

  kill(): void {
    this.proc.kill('SIGKILL');
  }
}

let dir: string;
let entropyPath: string;
let entropy: Buffer;
const children: Child[] = [];
const child = (script: string, opts: ChildOptions = {}): Child => {
  const c = new Child(script, { entropy: entropyPath, ...opts });
  children.push(c);
  return c;
};

/** Bytes of `hexBytes` appear in the pool file: they were drawn from the pool. */
function fromPool(hexBytes: string): boolean {
  return hexBytes.length >= 16 && entropy.includes(Buffer.from(hexBytes, 'hex'));
}

/** A v4 UUID whose 16 bytes, but for the version and variant bits, appear in the pool file. */
function uuidFromPool(uuid: string): boolean {
  const b = Buffer.from(uuid.replace(/-/g, ''), 'hex');
  const mask = Buffer.alloc(16, 0xff);
  mask[6] = 0x0f;
  mask[8] = 0x3f;
  for (let off = 0; off + 16 <= entropy.length; off++) {
    let match = true;
    for (let i = 0; i < 16 && match; i++) match = ((entropy[off + i]! ^ b[i]!) & mask[i]!) === 0;
    if (match) return true;
  }
  return false;
}

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const BYTE_KEYS = ['randomBytes', 'randomBytesCb', 'pseudoRandomBytes', 'randomFillSync', 'getRandomValues', 'moduleGetRandomValues'] as const;

function assertFromPool(s: Sample): void {
  for (const k of BYTE_KEYS) assert.ok(fromPool(s[k]), `${k} after renewal comes from the pool: ${s[k]}`);
  // randomFillSync(Uint32Array(6), 1, 4): elements 1..4 filled, 0 and 5 untouched.
  assert.equal(s.randomFillSyncRegion.slice(0, 8), '00000000');
  assert.equal(s.randomFillSyncRegion.slice(40), '00000000');
  assert.ok(fromPool(s.randomFillSyncRegion.slice(8, 40)), 'randomFillSync region from the pool');
  // randomFill(Uint16Array(12), 2, cb): elements 2..11 filled.
  assert.equal(s.randomFill.slice(0, 8), '00000000');
  assert.ok(fromPool(s.randomFill.slice(8)), 'randomFill region from the pool');
  for (const k of ['randomUUID', 'webRandomUUID'] as const) {
    assert.match(s[k], V4, `${k} is a v4 UUID`);
    assert.ok(uuidFromPool(s[k]), `${k} is built from pool bytes: ${s[k]}`);
  }
  assert.ok(s.randomInt[0]! >= 0 && s.randomInt[0]! < 1000000);
  assert.ok(s.randomInt[1]! >= -1000000 && s.randomInt[1]! < -999990, `randomInt(min, max) in range: ${s.randomInt[1]}`);
  assert.ok(s.randomIntCb >= 10 && s.randomIntCb < 1000000);
  for (const m of s.math) assert.ok(m >= 0 && m < 1, `Math.random in [0, 1): ${m}`);
}

function assertNodeOwn(s: Sample): void {
  for (const k of [...BYTE_KEYS, 'randomFill', 'randomFillSyncRegion'] as const) {
    assert.ok(!fromPool(k === 'randomFill' ? s[k].slice(8) : k === 'randomFillSyncRegion' ? s[k].slice(8, 40) : s[k]), `${k} is Node's own`);
  }
  for (const k of ['randomUUID', 'webRandomUUID'] as const) {
    assert.match(s[k], V4);
    assert.ok(!uuidFromPool(s[k]), `${k} is Node's own`);
  }
}

describe('node clone hooks', { timeout: 120_000 }, () => {
  let plain: { first: Sample; second: Sample; third: Sample; errors: Record<string, string> };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'uigniter-hooks-'));
    entropy = randomBytes(64 * 1024);
    entropyPath = join(dir, 'entropy');
    await writeFile(entropyPath, entropy);
    // Node without the hooks, same V8 seed: what "Node's own behaviour" is.
    const c = child(CJS_SCRIPT, { hooks: false });
    await c.line();
    plain = { first: await c.ask('sample'), second: await c.ask('sample'), third: await c.ask('sample'), errors: await c.ask('errors') };
    await c.exit();
  });

  after(async () => {
    for (const c of children) c.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('loads, forgets its variables and delegates to Node until a renewal', async () => {
    const c = child(CJS_SCRIPT);
    await c.line();
    const meta = await c.ask<{ env: unknown; entropyEnv: unknown; listeners: number; names: unknown[] }>('meta');
    assert.equal(meta.env, null, 'UIGNITER_HOOKS_FD is deleted so children do not inherit it');
    assert.equal(meta.entropyEnv, null);
    assert.equal(meta.listeners, 1, 'the hooks listen for SIGURG');
    await c.announcement(); // times out (and fails) if the hooks never say "U"
    assert.deepEqual(meta.names, ['randomBytes', 'randomUUID', 3, 'random']);
    const s = await c.ask<Sample>('sample');
    assertNodeOwn(s);
    assert.deepEqual(s.math, plain.first.math, 'Math.random is V8s own sequence');
    assert.deepEqual(await c.ask('errors'), plain.errors, 'argument errors are Node own');
    assert.equal(await c.exit(), 0);
  });

  it('acknowledges SIGURG with F and blocks until the answer; R renews every generator', async () => {
    const c = child(CJS_SCRIPT);
    await c.line();
    const before1 = await c.ask<Sample>('sample');
    assert.equal(await c.freeze(), 'F\n');
    // Blocked in the read: the child answers nothing until the init replies.
    c.proc.stdin!.write('meta\n');
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(c.waiting, 0, 'no JavaScript of the app ran while the hooks waited');
    c.reply('R');
    const meta = await c.line();
    assert.equal(meta.listeners, 1);
    const renewed = await c.ask<Sample>('sample');
    assertNodeOwn(before1);
    assertFromPool(renewed);
    // The pool was read from the source's start: Math.random's seed took bytes 0-15, the
    // first draw 16-31. The hooks rehearse the renewal at load and must give back what they read.
    assert.equal(entropy.indexOf(Buffer.from(renewed.randomBytes, 'hex')), 16, 'the first renewal reads the entropy source from its start');
    assert.notDeepEqual(renewed.math, plain.second.math, 'Math.random left V8s sequence');
    assert.deepEqual(await c.ask('errors'), plain.errors, 'argument errors are still Node own after renewal');

    // A second renewal discards the pool and reseeds Math.random.
    assert.equal(await c.freeze(), 'F\n');
    c.reply('R');
    const again = await c.ask<Sample>('sample');
    assertFromPool(again);
    for (const k of ['randomBytes', 'randomUUID', 'webRandomUUID'] as const) assert.notEqual(again[k], renewed[k]);
    assert.notDeepEqual(again.math, renewed.math);
    assert.equal(await c.exit(), 0);
  });

  it('renews deterministically from the pool: two clones with the same entropy agree, with different entropy differ', async () => {
    const run = async (entropyFile: string): Promise<Sample> => {
      const c = child(CJS_SCRIPT, { entropy: entropyFile });
      await c.line();
      await c.ask('sample');
      await c.freeze();
      c.reply('R');
      const s = await c.ask<Sample>('sample');
      await c.exit();
      return s;
    };
    const a = await run(entropyPath);
    const b = await run(entropyPath);
    // Node's own generators would differ between two processes; pool-drawn values do not.
    for (const k of ['randomBytes', 'randomUUID', 'webRandomUUID', 'randomInt', 'randomIntCb', 'math'] as const) assert.deepEqual(a[k], b[k], k);
    const other = join(dir, 'entropy-2');
    await writeFile(other, randomBytes(64 * 1024));
    const c = await run(other);
    for (const k of ['randomBytes', 'randomUUID', 'randomInt', 'math'] as const) assert.notDeepEqual(a[k], c[k], k);
  });

  it('T leaves the originals in place', async () => {
    const c = child(CJS_SCRIPT);
    await c.line();
    const first = await c.ask<Sample>('sample');
    assert.equal(await c.freeze(), 'F\n');
    c.reply('T');
    const s = await c.ask<Sample>('sample');
    assertNodeOwn(s);
    assert.deepEqual([first.math, s.math], [plain.first.math, plain.second.math], 'Math.random goes on with V8s sequence');
    assert.equal(await c.exit(), 0);
  });

  it('ESM imports of node:crypto get the wrappers', async () => {
    const c = child(ESM_SCRIPT, { esm: true });
    await c.line();
    const s0 = await c.ask<{ randomBytes: string; getRandomValues: string; randomUUID: string }>('sample');
    assert.ok(!fromPool(s0.randomBytes) && !uuidFromPool(s0.randomUUID));
    assert.equal(await c.freeze(), 'F\n');
    c.reply('R');
    const s = await c.ask<{ randomBytes: string; getRandomValues: string; randomUUID: string }>('sample');
    assert.ok(fromPool(s.randomBytes), 'imported randomBytes draws from the pool');
    assert.ok(fromPool(s.getRandomValues), 'imported getRandomValues draws from the pool');
    assert.match(s.randomUUID, V4);
    assert.ok(uuidFromPool(s.randomUUID), 'imported randomUUID draws from the pool');
    assert.equal(await c.exit(), 0);
  });

  it('brings ESM bindings imported before the hooks loaded up to date', async () => {
    const c = child(ESM_LATE_SCRIPT, { esm: true, late: true });
    await c.line();
    assert.equal(await c.freeze(), 'F\n');
    c.reply('R');
    const s = await c.ask<{ randomBytes: string; rebound: boolean }>('sample');
    assert.equal(s.rebound, true, 'the imported binding now names the wrapper');
    assert.ok(fromPool(s.randomBytes), 'the imported randomBytes draws from the pool');
    assert.equal(await c.exit(), 0);
  });

  it('turns itself off without a channel, and when the channel dies', async () => {
    // fd 9 is not open: nothing is installed, SIGURG keeps its default (ignored).
    const none = child(CJS_SCRIPT, { fd: '9' });
    await none.line();
    const meta = await none.ask<{ env: unknown; listeners: number }>('meta');
    assert.equal(meta.env, null);
    assert.equal(meta.listeners, 0);
    none.proc.kill('SIGURG');
    assert.deepEqual((await none.ask<Sample>('sample')).math, plain.first.math);
    assert.equal(await none.exit(), 0);

    // stdin (fd 0) is not a socket: refused too.
    const stdio = child(CJS_SCRIPT, { fd: '0' });
    await stdio.line();
    assert.equal((await stdio.ask<{ listeners: number }>('meta')).listeners, 0);
    assert.equal(await stdio.exit(), 0);

    // The init's end closes: the next SIGURG finds the channel dead and the app goes on.
    const dead = child(CJS_SCRIPT);
    await dead.line();
    dead.channel.destroy();
    await new Promise((res) => setTimeout(res, 200));
    dead.proc.kill('SIGURG');
    // The signal and the next stdin line race in the child's event loop: ask until it shows.
    let listeners = -1;
    for (let i = 0; i < 50 && listeners !== 0; i++) {
      listeners = (await dead.ask<{ listeners: number }>('meta')).listeners;
      if (listeners !== 0) await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal(listeners, 0, 'the hooks removed their listener');
    assertNodeOwn(await dead.ask<Sample>('sample'));
    assert.equal(await dead.exit(), 0);
  });
});
