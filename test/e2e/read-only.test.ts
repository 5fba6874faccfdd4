import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildFixture, guestGet, startTestDaemon, type TestDaemon } from '../daemon-harness.js';
import { FIXTURES, waitFor } from '../helpers.js';

interface WriteOutcome {
  path: string;
  ok: boolean;
  code?: string;
}

interface Probe {
  atStart: WriteOutcome[];
  now: WriteOutcome[];
  rootMount: { type: string; options: string[] } | undefined;
  hostname: string;
  etcHostname: string;
}

/** The paths the fixture tries to write, given as the original body's cmdline. */
const CMDLINE = '/written-by-app /tmp/written-by-app';

/**
 * read_only (the original Uigniter body) and readOnly (ours): the VM runs its image with
 * no writable root. The fixture tries to write to / and to /tmp and reports how each
 * attempt ended; a writable VM of the same image is the control that the fixture can see a
 * write succeed, so the EROFS below is the read-only root's and not the fixture's.
 */
describe('read-only root', () => {
  let d: TestDaemon;
  const post = async (body: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${d.url}/vm/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  before(async () => {
    d = await startTestDaemon();
    await buildFixture(d.home, join(FIXTURES, 'write-probe'), 'write-probe');
  });
  after(async () => {
    await d?.destroy();
  });

  it('control: the same image with a writable root writes to / and to /tmp', async () => {
    const r = await post({ image_name: 'write-probe', cmdline: CMDLINE });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.readOnly, false);
    const p = await guestGet<Probe>(String(r.body.ip), '/');
    assert.deepEqual(p.atStart, [
      { path: '/written-by-app', ok: true },
      { path: '/tmp/written-by-app', ok: true },
    ]);
    assert.ok(!p.rootMount?.options.includes('ro'), `root mounted ${JSON.stringify(p.rootMount)}`);
    await d.client.remove(String(r.body.id), { force: true });
  });

  it('the original body with read_only: true runs the image with a read-only root; /tmp stays writable', async () => {
    // As the original's clients sent it: OSv's whole command line, the program first.
    const r = await post({ image_name: 'write-probe', cmdline: `write-probe ${CMDLINE}`, read_only: true });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.state, 'running');
    assert.equal(r.body.ip_address, r.body.ip);
    assert.equal(r.body.readOnly, true);
    assert.deepEqual(r.body.args, ['/written-by-app', '/tmp/written-by-app']);
    const p = await guestGet<Probe>(String(r.body.ip), '/');
    assert.deepEqual(p.atStart, [
      { path: '/written-by-app', ok: false, code: 'EROFS' },
      { path: '/tmp/written-by-app', ok: true },
    ]);
    assert.deepEqual(p.now, [
      { path: '/written-by-app.again', ok: false, code: 'EROFS' },
      { path: '/tmp/written-by-app.again', ok: true },
    ]);
    assert.ok(p.rootMount?.options.includes('ro'), `root mounted ${JSON.stringify(p.rootMount)}`);
    // A stop and a start keep it: read-only is part of the VM's spec.
    await d.client.stop(String(r.body.id));
    const again = await d.client.start(String(r.body.id));
    assert.equal(again.readOnly, true);
    const p2 = await guestGet<Probe>(again.ip!, '/');
    assert.deepEqual(p2.atStart.map((w) => w.code ?? 'ok'), ['EROFS', 'ok']);
    await d.client.remove(String(r.body.id), { force: true });
  });

  it('our body takes readOnly: true the same way, and refuses a readOnly that is not a boolean', async () => {
    const r = await post({ image: 'write-probe', args: ['/written-by-app'], readOnly: true });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.readOnly, true);
    const p = await guestGet<Probe>(String(r.body.ip), '/');
    assert.deepEqual(p.atStart, [{ path: '/written-by-app', ok: false, code: 'EROFS' }]);
    await d.client.remove(String(r.body.id), { force: true });

    for (const [body, field] of [
      [{ image: 'write-probe', readOnly: 'yes' }, 'readOnly'],
      [{ image: 'write-probe', readOnly: 1 }, 'readOnly'],
      [{ image_name: 'write-probe', read_only: 'true' }, 'read_only'],
    ] as const) {
      const bad = await post(body);
      assert.equal(bad.status, 400, JSON.stringify(bad.body));
      const error = bad.body.error as { code: string; field?: string };
      assert.equal(error.code, 'invalid_argument');
      assert.equal(error.field, field);
    }
    assert.deepEqual(await d.client.list(), [], 'the refused requests made no VM');
  });

  it('a clone of a read-only VM (from its template) renews its identity and keeps the root read-only', async () => {
    // Arguments no other test of this file uses: its own template key.
    const spec = { image: 'write-probe', args: ['/written-by-clone'], readOnly: true };
    const first = await post({ ...spec, name: 'ro-first' });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.equal(first.body.origin, 'cold');
    await waitFor(async () => (await d.client.templates()).some((t) => t.source.name === 'ro-first'), 120_000, 'the template of the read-only spec');
    const clone = await post({ ...spec, name: 'ro-clone' });
    assert.equal(clone.status, 201, JSON.stringify(clone.body));
    assert.equal(clone.body.origin, 'template');
    assert.equal(clone.body.readOnly, true);
    const p = await guestGet<Probe>(String(clone.body.ip), '/');
    // The renewal rewrote /etc/hostname (the init made the root writable for that moment)...
    assert.equal(p.hostname, 'ro-clone');
    assert.equal(p.etcHostname, 'ro-clone');
    // ...and made it read-only again before the app ran on.
    assert.deepEqual(p.now, [{ path: '/written-by-clone.again', ok: false, code: 'EROFS' }]);
    assert.ok(p.rootMount?.options.includes('ro'), `root mounted ${JSON.stringify(p.rootMount)}`);
    // A writable spec of the same image never gets the read-only template (nor the reverse).
    const writable = await post({ image: 'write-probe', args: ['/written-by-clone'], name: 'rw-after' });
    assert.equal(writable.status, 201, JSON.stringify(writable.body));
    assert.equal(writable.body.origin, 'cold');
    assert.deepEqual((await guestGet<Probe>(String(writable.body.ip), '/')).atStart, [{ path: '/written-by-clone', ok: true }]);
    for (const n of ['ro-first', 'ro-clone', 'rw-after']) await d.client.remove(n, { force: true });
  });
});
