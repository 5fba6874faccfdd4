import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GuestAgent } from '../../guest/guest-agent.js';
import { messageOf, UigniterError } from '../errors.js';
import type { SavedState } from '../models.js';
import type { VmmProcess } from '../ports.js';
import type { Fleet } from '../supervision/fleet.js';

export const CONFIG_COPY = 'config.img';

/**
 * Saves a live VM's memory and device state into `dir` (caller holds the VM's lock and
 * owns dir). The app is quiesced first through the guest agent (its Node hooks block the
 * main thread, the rest of its processes are stopped) so that a clone renews everything
 * before app code runs again. The VM is left paused and frozen; `release` continues it.
 */
export async function saveState(fleet: Fleet, id: string, proc: VmmProcess, dir: string, wasPaused: boolean): Promise<SavedState> {
  fleet.saving.add(id);
  try {
    return await saveFrozen(fleet, id, proc, dir, wasPaused);
  } finally {
    // Released by the caller's `release` soon after; a probe landing in between may miss once.
    setTimeout(() => fleet.saving.delete(id), 2000).unref();
  }
}

async function saveFrozen(fleet: Fleet, id: string, proc: VmmProcess, dir: string, wasPaused: boolean): Promise<SavedState> {
  const ctx = fleet.supervisor.context(id)!;
  if (wasPaused) await proc.resume();
  let agent: GuestAgent;
  try {
    agent = new GuestAgent(await proc.openAgent());
  } catch (e) {
    if (wasPaused) await proc.pause().catch(() => undefined);
    throw new UigniterError('failed_precondition', `VM ${ctx.vm.name} has no guest agent to quiesce it (${messageOf(e)}); restart it with this uigniter`);
  }
  try {
    const { appQuiesced } = await agent.freeze().catch((e: unknown) => {
      throw new UigniterError('timeout', `the guest agent of VM ${ctx.vm.name} did not quiesce it: ${messageOf(e)}`);
    });
    await proc.pause();
    const saved = await proc.saveSnapshot(dir);
    // The config drive is a disk of the machine: a restore attaches the same one.
    const configDrive = join(dir, CONFIG_COPY);
    const current = ctx.launch!.disks[ctx.launch!.disks.length - 1]!.path;
    await copyFile(current, configDrive);
    return { dir, memory: saved.memory, bytes: saved.bytes, compat: saved.compat, configDrive, appQuiesced };
  } catch (e) {
    await release(proc, agent, wasPaused).catch(() => undefined);
    throw e;
  } finally {
    agent.close();
  }
}

/** Lets a VM that was saved run on as itself: vCPUs again, the app thawed, paused again if it was. */
export async function release(proc: VmmProcess, agent: GuestAgent | null, pauseAfter: boolean): Promise<void> {
  await proc.resume();
  const own = agent === null;
  const a = agent ?? new GuestAgent(await proc.openAgent());
  try {
    await a.thaw();
  } finally {
    if (own) a.close();
  }
  if (pauseAfter) await proc.pause();
}
