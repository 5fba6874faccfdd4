import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { ServiceView, VmView } from '../../src/api/schemas.js';
import { UigniterClient } from '../../src/client/client.js';
import { packageRoot } from '../../src/util/package-root.js';
import { buildFixture, startTestDaemon, type TestDaemon } from '../daemon-harness.js';
import { FIXTURES, makeShellApp, removeHome, waitFor } from '../helpers.js';

/** Debian's chromium, installed by scripts/setup.sh. */
const CHROMIUM = process.env.UIGNITER_CHROMIUM ?? '/usr/bin/chromium';
const TOKEN = 'dashboard-test-token';
/** Screenshots of each view: the tests' artifacts (not committed). */
export const SHOTS = join(packageRoot(), 'artifacts', 'screenshots');

const ticks = (text: string): number[] => [...text.matchAll(/^tick (\d+)$/gm)].map((m) => Number(m[1]));

/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core) against a
 * real daemon with real guests, a token set as a daemon off loopback would have: the fleet
 * follows the API live, a VM's log streams, a service's chart follows its autoscaler, the
 * page rides out a daemon SIGKILL, and without the token it shows nothing but the prompt.
 */
describe('dashboard in a browser', () => {
  let d: TestDaemon;
  let api: UigniterClient;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let ticker: string | undefined;

  const shot = async (p: Page, name: string): Promise<void> => {
    await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
  };
  const text = (p: Page, testId: string): Promise<string> => p.getByTestId(testId).innerText();

  before(async () => {
    await mkdir(SHOTS, { recursive: true });
    d = await startTestDaemon({ args: ['--token', TOKEN] });
    api = new UigniterClient(d.url, TOKEN);
    ticker = await makeShellApp('i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 1; done');
    await buildFixture(d.home, ticker, 'ticker');
    await buildFixture(d.home, join(FIXTURES, 'counter'), 'counter');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    // The tab already holds the token, as after the prompt was answered once.
    await context.addInitScript({ content: `sessionStorage.setItem('uigniter.token', ${JSON.stringify(TOKEN)})` });
    page = await context.newPage();
  });
  after(async () => {
    await browser?.close();
    await d?.destroy();
    if (ticker) await removeHome(ticker);
  });

  it('serves the page on the ui port and names it in /healthz', async () => {
    const health = (await (await fetch(`${d.url}/healthz`)).json()) as { ui: string; auth: boolean };
    assert.equal(health.ui, d.uiUrl);
    assert.equal(health.auth, true);
    const res = await fetch(d.uiUrl);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    const root = await fetch(d.uiUrl.replace('/ui/', '/'));
    assert.equal(root.status, 200, 'the root serves the page too');
    assert.equal(await root.text(), await (await fetch(d.uiUrl)).text());
    // The page needs no token; the data does, on the ui port as on the API port.
    assert.equal((await fetch(`${d.uiUrl.replace('/ui/', '')}/vm`)).status, 401);
    assert.equal((await fetch(`${d.uiUrl.replace('/ui/', '')}/vm`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
  });

  it('the fleet lists a VM within 1 s of its state change, and stopping it from the page stops it', async () => {
    await page.goto(d.uiUrl);
    await page.getByTestId('conn').filter({ hasText: 'live' }).waitFor({ timeout: 15_000 });
    const vm = await api.run({ image: 'ticker', name: 'web1' });
    assert.equal(vm.state, 'running');
    // The API answered with the new state: the page has 1 s to show it, without a reload.
    const t0 = performance.now();
    await page.getByTestId('vm-state-web1').filter({ hasText: 'running' }).waitFor({ timeout: 5000 });
    const ms = performance.now() - t0;
    assert.ok(ms <= 1000, `the fleet showed web1 running ${Math.round(ms)} ms after the API did`);
    await shot(page, 'fleet');

    await page.getByTestId('vm-row-web1').click();
    await page.getByTestId('action-stop').waitFor();
    await page.getByTestId('action-stop').click();
    await waitFor(async () => (await api.get('web1')).state === 'stopped', 60_000, 'web1 stopped by the page');
    await page.getByTestId('nav-fleet').click();
    await page.getByTestId('vm-state-web1').filter({ hasText: 'stopped' }).waitFor({ timeout: 5000 });
  });

  it("a VM's log view shows a line its app prints after the page opened, protocol lines apart", async () => {
    // A cold boot: its own console has the guest protocol's lines (a clone's were printed
    // by the VM its template was taken from).
    const vm = await api.run({ image: 'ticker', name: 'talker', boot: 'cold' });
    await page.goto(`${d.uiUrl}#/vm/${vm.id}`);
    const log = page.getByTestId('vm-log');
    await log.filter({ hasText: /tick \d+/ }).waitFor({ timeout: 15_000 });
    const atOpen = Math.max(...ticks(await log.innerText()));
    // A later tick is a line printed after the page opened; it must arrive without a reload.
    await log.filter({ hasText: new RegExp(`^tick ${atOpen + 2}$`, 'm') }).waitFor({ timeout: 15_000 });
    const shown = await log.innerText();
    assert.ok(!shown.includes('@uigniter '), 'protocol lines are not shown as app output');
    assert.match(await text(page, 'vm-protocol'), /^@uigniter started pid=\d+/m, 'protocol lines are shown apart');
    const history = await text(page, 'vm-history');
    assert.match(history, /running/);
    await shot(page, 'vm');
    await api.remove('talker', { force: true });
  });

  it("a service's chart gains points while its autoscaler acts, marks its decisions, and its max changes from the page", async () => {
    const s = await api.raw<ServiceView>('POST', '/services', {
      name: 'svc',
      image: 'counter',
      port: 8080,
      replicas: { min: 0, max: 2 },
      autoscale: { metric: 'inflight', target: 5, scaleToZeroAfterMs: 3000, stableWindowMs: 6000, panicWindowMs: 2000 },
    });
    await page.goto(`${d.uiUrl}#/services/svc`);
    await page.getByTestId('scale-chart').waitFor({ timeout: 10_000 });
    const count = async (id: string): Promise<number> => Number(await text(page, id));
    const points0 = await count('point-count');
    assert.equal(await count('decision-count'), 0, 'positive control: no decision yet');
    // A request wakes the service from zero; idle again, the autoscaler takes it back to zero.
    const res = await fetch(`${s.gateway!}/`, { signal: AbortSignal.timeout(60_000) });
    assert.equal(res.status, 200);
    // Two decisions: 0 -> 1 woken by the request, then 1 -> 0 once idle.
    await waitFor(async () => (await count('decision-count')) >= 2, 60_000, 'the wake and the scale to zero on the chart', 250);
    assert.ok((await count('point-count')) > points0, 'the chart gained points');
    const decisions = (await api.raw<{ points: { decision?: unknown }[] }>('GET', '/services/svc/metrics')).points.filter((p) => p.decision);
    assert.equal(decisions.length, await count('decision-count'), 'the chart marks the decisions the API has');
    await page.getByTestId('service-events').filter({ hasText: /scaled/ }).waitFor({ timeout: 10_000 });
    await shot(page, 'service');

    await page.getByTestId('replicas-max').fill('3');
    await page.getByTestId('replicas-save').click();
    await waitFor(async () => (await api.raw<ServiceView>('GET', '/services/svc')).replicas.max === 3, 10_000, 'max changed through the page');
    await api.raw('DELETE', '/services/svc');
  });

  it('the inventory lists images and the pools; the demos view says the pipeline is not running', async () => {
    await page.goto(`${d.uiUrl}#/inventory`);
    await page.getByText('ticker', { exact: false }).first().waitFor({ timeout: 10_000 });
    await shot(page, 'inventory');
    await page.getByTestId('nav-demos').click();
    await page.getByText(/not running/i).first().waitFor({ timeout: 10_000 });
    await shot(page, 'demos');
  });

  it('recovers after the daemon is SIGKILLed and started again, without a reload', async () => {
    await page.goto(d.uiUrl);
    await page.getByTestId('conn').filter({ hasText: 'live' }).waitFor({ timeout: 15_000 });
    await page.evaluate('window.__sameDocument = true');
    await d.kill('SIGKILL');
    await page.getByTestId('disconnected').waitFor({ timeout: 20_000 });
    await shot(page, 'disconnected');
    await d.restart();
    await page.getByTestId('conn').filter({ hasText: 'live' }).waitFor({ timeout: 30_000 });
    // Live again: a VM created now shows up without a reload.
    await api.run({ image: 'ticker', name: 'after-restart' });
    await page.getByTestId('vm-state-after-restart').filter({ hasText: 'running' }).waitFor({ timeout: 5000 });
    assert.equal(await page.evaluate('window.__sameDocument'), true, 'the page was not reloaded');
    await api.remove('after-restart', { force: true });
  });

  it('with a token set, a tab without it shows the token prompt and no data', async () => {
    const vms: VmView[] = await api.list();
    assert.ok(vms.some((v) => v.name === 'web1'), 'positive control: there is data to hide');
    const fresh = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    try {
      const p = await fresh.newPage();
      await p.goto(d.uiUrl);
      await p.getByTestId('token-form').waitFor({ timeout: 10_000 });
      assert.equal(await p.locator('[data-testid^="vm-row-"]').count(), 0, 'no VM is shown before the token');
      assert.ok(!(await p.content()).includes('web1'), 'no VM name anywhere in the page');
      await shot(p, 'token');
      // Positive control: the same tab with the token shows the fleet.
      await p.getByTestId('token-input').fill(TOKEN);
      await p.getByTestId('token-input').press('Enter');
      await p.getByTestId('vm-row-web1').waitFor({ timeout: 10_000 });
    } finally {
      await fresh.close();
    }
  });
});
