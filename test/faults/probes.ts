import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VmView } from '../../src/client/client.js';
import { Paths } from '../../src/util/paths.js';
import { dnsAnswer, type TestDaemon } from '../daemon-harness.js';
import { qemuProcesses, waitFor } from '../helpers.js';

/** States a VM may pass through but never rest in once the daemon is idle. */
export const TRANSIENT = new Set<VmView['state']>(['creating', 'booting', 'stopping']);
/** States in which a VM owns a VMM process, a tap, a RAM file (cold) and its DNS name. */
export const LIVE = new Set<VmView['state']>(['booting', 'running', 'paused', 'stopping']);

/** A small seeded PRNG (mulberry32), so a failing run can be replayed with FAULT_SEED. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What an audit found: each entry one resource or one record, said in words. */
export interface AuditResult {
  /** Resources no record owns (tap, QEMU, lease, directory, RAM file, DNS name, snapshot files). */
  leaks: string[];
  /** Leases a record should hold but does not, or held twice (by one VM or for one address). */
  leaseFaults: string[];
  /** Records that are wrong in themselves (a live VM without its process, a pid shared). */
  recordFaults: string[];
  /** What the probes saw, for positive controls. */
  seen: { qemu: number[]; taps: string[]; leases: { ip: string; vm_id: string }[]; dirs: string[]; ram: string[]; dns: Record<string, string[] | string> };
}

export function tapOf(vmId: string): string {
  return `vt${vmId.slice(0, 12)}`;
}

export async function ramFiles(d: TestDaemon): Promise<string[]> {
  return (await readdir(new Paths(d.home).memory).catch(() => [] as string[])).filter((f) => f.endsWith('.ram'));
}

async function alive(pid: number): Promise<string | null> {
  return readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
}

/**
 * Compares every resource a VM can own with the records given (normally the API's list;
 * a positive control passes fewer records and must see the others' resources as leaks).
 * `names` are all VM names the test ever used: a name must resolve exactly when a live VM
 * of that name exists, and the daemon must say NXDOMAIN (not be silent) otherwise.
 */
export async function audit(d: TestDaemon, records: VmView[], names: Iterable<string>): Promise<AuditResult> {
  const leaks: string[] = [];
  const leaseFaults: string[] = [];
  const recordFaults: string[] = [];
  const byId = new Map(records.map((v) => [v.id, v]));
  const live = records.filter((v) => LIVE.has(v.state));

  // QEMU: each process belongs to a live record by pid; each live record's pid is alive,
  // names its VM and is nobody else's.
  const qemu = await qemuProcesses(d.home);
  const livePids = new Map(live.filter((v) => v.pid !== null).map((v) => [v.pid!, v]));
  for (const pid of qemu) if (!livePids.has(pid)) leaks.push(`QEMU pid ${pid} owned by no live VM`);
  const pidsSeen = new Map<number, string>();
  for (const v of live) {
    if (v.pid === null) {
      recordFaults.push(`${v.name} is ${v.state} without a pid`);
      continue;
    }
    const other = pidsSeen.get(v.pid);
    if (other) recordFaults.push(`${v.name} and ${other} share pid ${v.pid}`);
    pidsSeen.set(v.pid, v.name);
    const cmd = await alive(v.pid);
    if (cmd === null) recordFaults.push(`${v.name} is ${v.state} but its pid ${v.pid} is dead`);
    else if (!cmd.includes(v.id)) recordFaults.push(`${v.name}'s pid ${v.pid} is not its QEMU`);
  }

  // Taps: one per live VM, none else.
  const taps = await d.taps();
  const liveTaps = new Set(live.map((v) => tapOf(v.id)));
  for (const t of taps) if (!liveTaps.has(t)) leaks.push(`tap ${t} owned by no live VM`);
  for (const v of live) if (!taps.includes(tapOf(v.id))) recordFaults.push(`${v.name} is ${v.state} without its tap`);

  // Leases: a VM record with an address holds exactly that lease (a stopped or failed VM
  // keeps its address, as documented); a lease of no record is a leak; one VM or one
  // address twice is a double.
  const leases = d.leases();
  const perVm = new Map<string, string[]>();
  const perIp = new Map<string, string[]>();
  for (const l of leases) {
    perVm.set(l.vm_id, [...(perVm.get(l.vm_id) ?? []), l.ip]);
    perIp.set(l.ip, [...(perIp.get(l.ip) ?? []), l.vm_id]);
    if (!byId.has(l.vm_id)) leaks.push(`lease ${l.ip} held by ${l.vm_id}, which has no record`);
  }
  for (const [vm, ips] of perVm) if (ips.length > 1) leaseFaults.push(`VM ${vm} holds ${ips.length} leases (${ips.join(', ')})`);
  for (const [ip, vms] of perIp) if (vms.length > 1) leaseFaults.push(`address ${ip} leased ${vms.length} times`);
  for (const v of records) {
    if (v.ip === null) continue;
    const held = perVm.get(v.id) ?? [];
    if (!held.includes(v.ip)) leaseFaults.push(`${v.name} (${v.state}) has address ${v.ip} but no lease for it (lost)`);
  }

  // Run directories and RAM files.
  const dirs = (await readdir(join(d.home, 'vms')).catch(() => [] as string[])).filter((f) => !f.startsWith('.'));
  for (const dir of dirs) if (!byId.has(dir)) leaks.push(`run directory vms/${dir} owned by no record`);
  const ram = await ramFiles(d);
  const liveIds = new Set(live.map((v) => v.id));
  for (const f of ram) if (!liveIds.has(f.replace(/\.ram$/, ''))) leaks.push(`RAM file ${f} owned by no live VM`);

  // DNS: the daemon answers each name it should and says NXDOMAIN for the others.
  const dns: Record<string, string[] | string> = {};
  for (const name of new Set(names)) {
    const answer = await dnsAnswer(d, name);
    dns[name] = answer;
    const owner = records.find((v) => v.name === name && (v.state === 'running' || v.state === 'paused'));
    if (owner) {
      if (JSON.stringify(answer) !== JSON.stringify([owner.ip])) recordFaults.push(`${name} is ${owner.state} but its DNS answer is ${JSON.stringify(answer)}`);
    } else if (!records.some((v) => v.name === name && LIVE.has(v.state)) && answer !== 'ENOTFOUND') {
      leaks.push(`DNS name ${name} answers ${JSON.stringify(answer)} with no live VM of that name`);
    }
  }

  return { leaks, leaseFaults, recordFaults, seen: { qemu, taps, leases, dirs, ram, dns } };
}

/** Snapshot directories no snapshot or template record owns. */
export async function orphanSnapshotDirs(d: TestDaemon): Promise<string[]> {
  const known = new Set([...(await d.client.snapshots()), ...(await d.client.templates())].map((s) => s.name));
  return (await readdir(join(d.home, 'snapshots')).catch(() => [] as string[])).filter((s) => !known.has(s));
}

/** The VM list once no VM is in a transient state; throws naming the stuck ones. */
export async function settled(d: TestDaemon, timeoutMs: number): Promise<VmView[]> {
  let last: VmView[] = [];
  try {
    return await waitFor(
      async () => {
        last = await d.client.list();
        return last.some((v) => TRANSIENT.has(v.state)) ? null : last;
      },
      timeoutMs,
      'no VM in a transient state',
      200,
    );
  } catch {
    throw new Error(`VMs stuck in a transient state: ${last.filter((v) => TRANSIENT.has(v.state)).map((v) => `${v.name}=${v.state}`).join(', ')}`);
  }
}
