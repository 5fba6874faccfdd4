import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Duplex, PassThrough } from 'node:stream';
import { formatCommand, MAX_LINE, parseReply, type GuestIdentity } from '../../src/guest/agent-protocol.js';
import { GuestAgent } from '../../src/guest/guest-agent.js';

const identity: GuestIdentity = {
  ip: '172.30.0.7',
  prefix: 24,
  gateway: '172.30.0.1',
  mac: '52:55:AC:1E:00:07',
  hostname: 'web-2',
  timeMs: 1_800_000_000_123,
  entropy: Buffer.alloc(32, 0xab),
};

/** A fake guest: what the agent writes, and a way to answer. */
function pair(): { agent: GuestAgent; written: () => string; reply: (text: string) => void; stream: Duplex; end: () => void } {
  const toGuest = new PassThrough();
  const fromGuest = new PassThrough();
  const stream = Duplex.from({ readable: fromGuest, writable: toGuest });
  let written = '';
  toGuest.on('data', (c: Buffer) => (written += c.toString('latin1')));
  return {
    agent: new GuestAgent(stream, 200),
    written: () => written,
    reply: (text) => fromGuest.write(text),
    stream,
    end: () => fromGuest.end(),
  };
}

const tick = (): Promise<void> => new Promise((res) => setImmediate(res));

describe('agent protocol: lines', () => {
  it('formats the commands, renew with every field encoded as one token', () => {
    assert.equal(formatCommand({ kind: 'ping' }), 'ping\n');
    assert.equal(formatCommand({ kind: 'freeze' }), 'freeze\n');
    assert.equal(formatCommand({ kind: 'thaw' }), 'thaw\n');
    assert.equal(formatCommand({ kind: 'clock', timeMs: 1800000000123 }), 'clock 1800000000123\n');
    assert.throws(() => formatCommand({ kind: 'clock', timeMs: -1 }), /timeMs/);
    assert.equal(
      formatCommand({ kind: 'renew', identity }),
      `renew 172.30.0.7 24 172.30.0.1 52:55:ac:1e:00:07 web-2 1800000000123 ${'ab'.repeat(32)}\n`,
    );
    assert.equal(
      formatCommand({ kind: 'renew', identity: { ...identity, keepConnections: true } }),
      `renew 172.30.0.7 24 172.30.0.1 52:55:ac:1e:00:07 web-2 1800000000123 ${'ab'.repeat(32)} keep-connections\n`,
      'a spare handed out keeps its connections',
    );
  });

  it('refuses an identity the guest would refuse, before sending it', () => {
    const bad: [Partial<GuestIdentity>, RegExp][] = [
      [{ ip: '172.30.0' }, /ip/],
      [{ prefix: 0 }, /prefix/],
      [{ prefix: 33 }, /prefix/],
      [{ gateway: 'gw' }, /gateway/],
      [{ mac: '52:55:ac:1e:00' }, /mac/],
      [{ mac: '01:00:5e:00:00:01' }, /multicast/],
      [{ hostname: 'a b' }, /hostname/],
      [{ hostname: '-web' }, /hostname/],
      [{ hostname: 'x'.repeat(64) }, /hostname/],
      [{ timeMs: 1.5 }, /timeMs/],
      [{ entropy: Buffer.alloc(31) }, /entropy/],
      [{ entropy: Buffer.alloc(257) }, /entropy/],
    ];
    for (const [change, message] of bad) {
      assert.throws(() => formatCommand({ kind: 'renew', identity: { ...identity, ...change } }), message, JSON.stringify(change));
    }
    // The limits themselves are fine.
    formatCommand({ kind: 'renew', identity: { ...identity, prefix: 32, gateway: '10.0.0.1', entropy: Buffer.alloc(256) } });
  });

  it('parses ok and err replies, decoding tokens', () => {
    assert.deepEqual(parseReply('ok pong'), { kind: 'ok', words: ['pong'] });
    assert.deepEqual(parseReply('ok frozen 1\n'), { kind: 'ok', words: ['frozen', '1'] });
    assert.deepEqual(parseReply('err renew:%20eth0:%20No%20such%20device'), { kind: 'err', message: 'renew: eth0: No such device' });
  });

  it('refuses malformed replies', () => {
    for (const line of ['', 'pong', 'ok  pong', 'ok pong ', 'ok %zz', 'ok a\tb', 'hello world']) {
      assert.throws(() => parseReply(line), /malformed/, JSON.stringify(line));
    }
  });
});

describe('GuestAgent', () => {
  it('sends commands and matches replies in order', async () => {
    const g = pair();
    const ping = g.agent.ping();
    const freeze = g.agent.freeze();
    const thaw = g.agent.thaw();
    const renew = g.agent.renew(identity);
    await tick();
    assert.equal(g.written().split('\n').slice(0, 3).join(','), 'ping,freeze,thaw');
    assert.match(g.written(), /\nrenew 172\.30\.0\.7 24 /);
    // Replies may arrive split anywhere.
    g.reply('ok po');
    g.reply('ng\nok frozen 1\nok tha');
    g.reply('wed\nok renewed\n');
    await ping;
    assert.deepEqual(await freeze, { appQuiesced: true });
    await thaw;
    await renew;
    g.agent.close();
  });

  it('reports appQuiesced false when the hooks did not answer', async () => {
    const g = pair();
    const f = g.agent.freeze();
    g.reply('ok frozen 0\n');
    assert.deepEqual(await f, { appQuiesced: false });
    g.agent.close();
  });

  it('rejects on err with the guest message, and goes on with the next command', async () => {
    const g = pair();
    const renew = g.agent.renew(identity);
    const ping = g.agent.ping();
    g.reply('err renew:%20eth0:%20No%20such%20device\nok pong\n');
    await assert.rejects(renew, /guest agent: renew: renew: eth0: No such device/);
    await ping;
    g.agent.close();
  });

  it('rejects a reply of the wrong kind', async () => {
    const g = pair();
    const thaw = g.agent.thaw();
    g.reply('ok pong\n');
    await assert.rejects(thaw, /unexpected reply to thaw: ok pong/);
    g.agent.close();
  });

  it('times out naming the command, and drops the late reply so the next command gets its own', async () => {
    const g = pair();
    await assert.rejects(g.agent.freeze(50), /guest agent: freeze timed out after 50 ms/);
    const ping = g.agent.ping();
    g.reply('ok frozen 1\n'); // the freeze's, late
    g.reply('ok pong\n');
    await ping;
    g.agent.close();
  });

  it('uses its default timeout', async () => {
    const g = pair();
    const t0 = Date.now();
    await assert.rejects(g.agent.ping(), /ping timed out after 200 ms/);
    assert.ok(Date.now() - t0 >= 190);
    g.agent.close();
  });

  it('rejects what waits when the channel closes, and everything after', async () => {
    const g = pair();
    const ping = g.agent.ping();
    g.end();
    await assert.rejects(ping, /channel closed/);
    await assert.rejects(g.agent.thaw(), /channel closed/);
  });

  it('close() rejects waiting commands and destroys the stream', async () => {
    const g = pair();
    const freeze = g.agent.freeze();
    g.agent.close();
    await assert.rejects(freeze, /closed/);
    assert.equal(g.stream.destroyed, true);
    await assert.rejects(g.agent.ping(), /closed/);
  });

  it('treats unsolicited, malformed or endless lines as a broken channel', async () => {
    const a = pair();
    const ping = a.agent.ping();
    a.reply('ok pong\nok pong\n');
    await ping;
    await assert.rejects(a.agent.ping(), /unexpected line/);

    const b = pair();
    const p2 = b.agent.ping();
    b.reply('what\n');
    await assert.rejects(p2, /malformed reply/);

    const c = pair();
    const p3 = c.agent.ping();
    c.reply('x'.repeat(MAX_LINE + 1));
    await assert.rejects(p3, /longer than 4096/);
  });

  it('rejects a bad identity without writing anything', async () => {
    const g = pair();
    await assert.rejects(g.agent.renew({ ...identity, ip: 'nope' }), /bad ip/);
    await tick();
    assert.equal(g.written(), '');
    g.agent.close();
  });
});
