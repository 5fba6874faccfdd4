'use strict';
/*
 * uigniter clone hooks for Node.js apps, preloaded into the app by the guest init
 * (guest/init/init.c) with `NODE_OPTIONS=--require /usr/lib/uigniter/node-clone-hooks.cjs`.
 *
 * Why: several VMs can be restored from one memory snapshot. Each clone then starts with
 * the very same process memory, so every pseudo-random generator inside the app holds the
 * same state in every clone: they would hand out the same UUIDs, the same tokens, the same
 * Math.random() sequence. The init makes each clone a distinct machine (fresh kernel
 * entropy, clock, hostname, network identity) before the app runs again; these hooks carry
 * that renewal into the JavaScript world.
 *
 * How: the init gives the app one end of a socket pair as the fd named by
 * UIGNITER_HOOKS_FD. At load the hooks write "U\n" (they listen to SIGURG: see FREEZE_SIGNAL in
 * guest/init/init.c; Node itself never listens to it, while it does to SIGWINCH when stdio
 * is a TTY). Before a snapshot the init sends SIGURG; our handler writes "F\n"
 * and blocks in a synchronous read, so the main thread runs no JavaScript while the VM is
 * snapshotted. The init then answers one line: "T\n" (thaw: the same machine goes on;
 * nothing changes) or "R\n" (renew: this is a clone or a resumed VM; from then on every
 * wrapped generator draws from a pool read from /dev/urandom, which the init has just
 * reseeded, and the pool is discarded at every later renewal).
 *
 * Until the first renewal every wrapper calls Node's original unchanged, and after it the
 * original still runs first (its argument checking, errors, deprecation warnings and
 * callback timing stay Node's own); only its output is replaced with bytes from the pool.
 * Anything that goes wrong here (no fd, a dead channel, no /dev/urandom) turns the hooks
 * off silently and leaves Node's own behaviour: the app must never break because of them.
 *
 * What stays shared between clones (the hooks cannot reach it):
 *   - values the app computed before the snapshot (keys, ids, tokens it holds in memory);
 *   - OpenSSL's internal DRBG state, used by TLS handshakes, key generation
 *     (generateKeyPair, createECDH, webcrypto subtle.generateKey ...) and signatures
 *     inside the process: Node gives JavaScript no way to reseed it, and OpenSSL reseeds it
 *     on its own time/counter schedule;
 *   - worker threads: the hooks act in the main thread only, so a worker's own Math.random
 *     state and its unwrapped node:crypto (randomUUID's and randomInt's caches of random
 *     bytes, OpenSSL as above) are the snapshot's; likewise Math.random in vm contexts;
 *   - process.env.HOSTNAME, set at boot (os.hostname() does follow the renewal);
 *   - child processes started before the snapshot (they run without the channel).
 *
 * Child processes and workers: the variable is deleted at load, so a child `node` that
 * inherits NODE_OPTIONS loads this file and finds nothing to do. The fd itself cannot be
 * marked close-on-exec from JavaScript, so children may inherit it; they never use it.
 */

const fs = require('node:fs');

const FD_VAR = 'UIGNITER_HOOKS_FD';
// The init's FREEZE_SIGNAL (guest/init/init.c).
const FREEZE_SIGNAL = 'SIGURG';
// For tests only: a file to read the pool from instead of /dev/urandom, so a test can tell
// bytes drawn from the pool from Node's own.
const SOURCE_VAR = 'UIGNITER_HOOKS_ENTROPY';
const POOL_SIZE = 4096;

let channel = -1;
const fdText = process.env[FD_VAR];
const source = process.env[SOURCE_VAR] || '/dev/urandom';
// Read once and forget, so children do not inherit them through process.env.
delete process.env[FD_VAR];
delete process.env[SOURCE_VAR];

try {
  // Only an fd above stdio, and only a socket (what the init gives). Only the main thread
  // gets here with the variable: preloads run first, before any worker can be created, and
  // workers copy process.env after the variable is gone (node:worker_threads is not asked:
  // loading it costs milliseconds at every start).
  if (fdText !== undefined && /^[0-9]{1,4}$/.test(fdText) && Number(fdText) > 2) {
    const fd = Number(fdText);
    if (fs.fstatSync(fd).isSocket()) channel = fd;
  }
} catch {
  channel = -1;
}

if (channel >= 0) {
  try {
    install();
  } catch {
    // A Node without some of these functions: whatever got wrapped still delegates.
  }
}

function install() {
  const crypto = require('node:crypto');

  // ---- renewal state ----
  let renewed = false;
  let sourceFd = -1;
  let pool = null;
  let poolPos = 0;

  // Fills `target` (a Uint8Array) with bytes from the pool; throws when the source fails.
  function draw(target) {
    const n = target.length;
    if (n > POOL_SIZE / 2) {
      readFully(target);
      return;
    }
    if (poolPos + n > pool.length) {
      readFully(pool);
      poolPos = 0;
    }
    target.set(pool.subarray(poolPos, poolPos + n));
    // Spent bytes are wiped: a snapshot taken later must not hold them.
    pool.fill(0, poolPos, poolPos + n);
    poolPos += n;
  }

  function readFully(buf) {
    let off = 0;
    while (off < buf.length) {
      const r = fs.readSync(sourceFd, buf, off, buf.length - off, null);
      if (r <= 0) throw new Error('entropy source ended');
      off += r;
    }
  }

  // Replaces bytes an original produced with pool bytes. If the pool fails, the original's
  // bytes stay: worse for clones, but never an error the app did not have before.
  function overwrite(bytes) {
    if (!renewed || bytes.length === 0) return;
    try {
      draw(bytes);
    } catch {
      /* keep Node's bytes */
    }
  }

  function bytesOf(buf) {
    if (ArrayBuffer.isView(buf)) return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    return new Uint8Array(buf);
  }

  // The part of buf randomFill(Sync) filled: offset and size count elements, as in Node.
  function filledRegion(buf, offset, size) {
    const all = bytesOf(buf);
    const el = buf.BYTES_PER_ELEMENT || 1;
    const start = (offset === undefined ? 0 : offset) * el;
    const len = size === undefined ? all.length - start : size * el;
    return all.subarray(start, start + len);
  }

  // Node's randomInt: rejection sampling over 48-bit draws, so x % range is unbiased.
  const RAND_MAX = 0xffff_ffff_ffff;
  function uniform(range) {
    const limit = RAND_MAX - (RAND_MAX % range);
    const six = Buffer.alloc(6);
    for (;;) {
      draw(six);
      const x = six.readUIntBE(0, 6);
      if (x < limit) return x % range;
    }
  }

  function uuidV4() {
    const b = Buffer.alloc(16);
    draw(b);
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    const h = b.toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // Math.random after a renewal: xoshiro128** (the 32-bit sibling of V8's xorshift128+),
  // two outputs per double for 53 random bits, seeded from the pool at every renewal.
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let ownRandom = false;
  const rotl = (x, k) => (x << k) | (x >>> (32 - k));
  function next32() {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  }

  // Defines `name` on `target` as a wrapper of the original, keeping the property's
  // attributes and the function's name and length (some code looks at them).
  function patch(target, name, makeWrapper) {
    const desc = Object.getOwnPropertyDescriptor(target, name);
    const original = desc ? ('value' in desc ? desc.value : desc.get && desc.get.call(target)) : undefined;
    if (typeof original !== 'function') return;
    const wrapper = makeWrapper(original);
    Object.defineProperty(wrapper, 'name', { value: original.name, configurable: true });
    Object.defineProperty(wrapper, 'length', { value: original.length, configurable: true });
    Object.defineProperty(target, name, {
      value: wrapper,
      writable: true,
      enumerable: desc ? desc.enumerable : false,
      configurable: true,
    });
  }

  // Wraps a callback so its result is replaced if a renewal happened by the time it runs
  // (a job started before a snapshot can complete after the restore).
  function wrapCallback(cb, fix) {
    return function (...results) {
      if (!results[0]) fix(results);
      return Reflect.apply(cb, this, results);
    };
  }

  // randomBytes and its deprecated aliases (prng, rng, pseudoRandomBytes).
  const bytesWrapper = (original) =>
    function (...args) {
      if (typeof args[1] === 'function') {
        args[1] = wrapCallback(args[1], (r) => r[1] && overwrite(bytesOf(r[1])));
        return Reflect.apply(original, this, args);
      }
      const buf = Reflect.apply(original, this, args);
      overwrite(bytesOf(buf));
      return buf;
    };
  for (const name of ['randomBytes', 'pseudoRandomBytes', 'prng', 'rng']) patch(crypto, name, bytesWrapper);

  patch(crypto, 'randomFillSync', (original) =>
    function (...args) {
      const buf = Reflect.apply(original, this, args);
      if (renewed) overwrite(filledRegion(buf, args[1], args[2]));
      return buf;
    },
  );

  patch(crypto, 'randomFill', (original) =>
    function (...args) {
      // randomFill(buf, cb), (buf, offset, cb), (buf, offset, size, cb)
      const at = [1, 2, 3].find((i) => typeof args[i] === 'function');
      if (at !== undefined) {
        const offset = at > 1 ? args[1] : undefined;
        const size = at > 2 ? args[2] : undefined;
        args[at] = wrapCallback(args[at], (r) => renewed && overwrite(filledRegion(args[0], offset, size)));
      }
      return Reflect.apply(original, this, args);
    },
  );

  patch(crypto, 'randomInt', (original) =>
    function (...args) {
      // randomInt(max[, cb]) or randomInt(min, max[, cb]), parsed as Node does.
      const minAbsent = args[1] === undefined || typeof args[1] === 'function';
      const min = minAbsent ? 0 : args[0];
      const max = minAbsent ? args[0] : args[1];
      const at = minAbsent ? 1 : 2;
      const fresh = () => min + uniform(max - min);
      if (typeof args[at] === 'function') {
        args[at] = wrapCallback(args[at], (r) => {
          if (!renewed) return;
          try {
            r[1] = fresh();
          } catch {
            /* keep Node's number */
          }
        });
        return Reflect.apply(original, this, args);
      }
      const n = Reflect.apply(original, this, args);
      if (!renewed) return n;
      try {
        return fresh();
      } catch {
        return n;
      }
    },
  );

  // Node's randomUUID hands out UUIDs from a cache of random bytes filled in advance: a
  // snapshot holds the next ones. The original still runs for its option checking.
  const uuidWrapper = (original) =>
    function (...args) {
      const id = Reflect.apply(original, this, args);
      if (!renewed) return id;
      try {
        return uuidV4();
      } catch {
        return id;
      }
    };
  patch(crypto, 'randomUUID', uuidWrapper);

  // Web Crypto: globalThis.crypto is crypto.webcrypto. Its methods live on the Crypto
  // prototype (and check `this`), and crypto.getRandomValues (a read-only getter on the
  // module) calls through them, so patching the prototype covers all three spellings.
  const webcrypto = crypto.webcrypto;
  const proto = webcrypto && Object.getPrototypeOf(webcrypto);
  if (proto) {
    patch(proto, 'getRandomValues', (original) =>
      function (...args) {
        const array = Reflect.apply(original, this, args);
        if (renewed) overwrite(bytesOf(array));
        return array;
      },
    );
    patch(proto, 'randomUUID', uuidWrapper);
  }

  const originalRandom = Math.random;
  patch(Math, 'random', () =>
    function random() {
      if (!ownRandom) return originalRandom();
      return ((next32() >>> 5) * 67108864 + (next32() >>> 6)) / 9007199254740992;
    },
  );

  // `import { randomUUID } from 'node:crypto'` binds to the ESM view of the module, a copy
  // made when it was first loaded: bring it up to date with the wrappers.
  require('node:module').syncBuiltinESMExports();

  function renew() {
    try {
      if (sourceFd < 0) sourceFd = fs.openSync(source, 'r');
      if (!pool) pool = Buffer.alloc(POOL_SIZE);
      // Discard what is left: the snapshot holds it, and so does every other clone.
      pool.fill(0);
      poolPos = pool.length;
      renewed = true;
      const seed = new Int32Array(4);
      draw(new Uint8Array(seed.buffer));
      [s0, s1, s2, s3] = seed;
      if ((s0 | s1 | s2 | s3) === 0) s0 = 1; // the one state xoshiro cannot leave
      ownRandom = true;
    } catch {
      // No fresh entropy: Math.random goes back to V8's; crypto keeps Node's bytes (draw fails).
      ownRandom = false;
    }
  }

  // Runs the renewal's code once at load, on state it then gives back. V8 compiles a
  // function at its first call: without this, every clone compiled these functions at its
  // first renewal, after its restore had answered, on its first request's time (under TCG
  // each QEMU translates V8's parser and bytecode compiler anew). Measured on the counter
  // app, template clones, 60 alternated rounds: first reply p50 144 -> 123 ms. Nothing is
  // kept: the source is closed (the real renewal reads it from its start), the bytes drawn
  // are wiped, and Math.random is V8's again.
  function rehearse() {
    try {
      renew();
      if (!ownRandom) return;
      Math.random();
      uuidV4();
      uniform(7);
      overwrite(filledRegion(new Uint32Array(2), 1, 1));
    } finally {
      if (pool) pool.fill(0);
      poolPos = pool ? pool.length : 0;
      s0 = s1 = s2 = s3 = 0;
      renewed = false;
      ownRandom = false;
      if (sourceFd >= 0) fs.closeSync(sourceFd);
      sourceFd = -1;
    }
  }
  try {
    rehearse();
  } catch {
    /* the real renewal will try again, and fall back as it does */
  }

  // ---- the channel ----

  function disable() {
    process.removeListener(FREEZE_SIGNAL, onFreeze);
    try {
      fs.closeSync(channel);
    } catch {
      /* already gone */
    }
    channel = -1;
  }

  // A short sleep that blocks the thread (the channel should be blocking; this covers an
  // fd someone made non-blocking).
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  function retryable(e) {
    if (e && (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK' || e.code === 'EINTR')) {
      Atomics.wait(sleeper, 0, 0, 2);
      return true;
    }
    return false;
  }

  function writeAll(text) {
    const buf = Buffer.from(text, 'latin1');
    let off = 0;
    while (off < buf.length) {
      try {
        off += fs.writeSync(channel, buf, off, buf.length - off);
      } catch (e) {
        if (!retryable(e)) throw e;
      }
    }
  }

  // One line, read a byte at a time so nothing after it is consumed. null at end of file.
  function readLine() {
    const one = Buffer.alloc(1);
    let line = '';
    for (;;) {
      let r;
      try {
        r = fs.readSync(channel, one, 0, 1, null);
      } catch (e) {
        if (retryable(e)) continue;
        throw e;
      }
      if (r === 0) return null;
      if (one[0] === 0x0a) return line;
      if (line.length < 64) line += String.fromCharCode(one[0]);
    }
  }

  // The freeze signal from the init: acknowledge, then hold the main thread until the init
  // answers. Node runs this from the event loop, so no other JavaScript of the app runs
  // meanwhile.
  function onFreeze() {
    if (channel < 0) return;
    let reply;
    try {
      writeAll('F\n');
      reply = readLine();
    } catch {
      disable();
      return;
    }
    if (reply === null) disable();
    else if (reply === 'R') renew();
    // "T" (and anything unknown): the same machine goes on, nothing to do.
  }

  // Node unrefs signal handles: this listener does not keep the app alive.
  process.on(FREEZE_SIGNAL, onFreeze);
  // Tells the init to freeze us with FREEZE_SIGNAL: to hooks that do not say so (built
  // before it), it sends SIGWINCH, which they listen to.
  try {
    writeAll('U\n');
  } catch {
    disable();
  }
}
