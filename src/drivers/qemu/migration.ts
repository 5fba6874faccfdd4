import { createReadStream, createWriteStream } from 'node:fs';
import { chown, rm } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { UigniterError } from '../../core/errors.js';
import type { QmpClient, QmpEvent } from './qmp-client.js';

interface MigrationInfo {
  status?: string;
  'error-desc'?: string;
}

/**
 * A migration stream goes through a unix socket in the VMM's jail (its run directory when
 * unconfined), served by the daemon, which reads or writes the snapshot file itself: a
 * confined QEMU can neither exec (`exec:` migration spawns /bin/sh) nor see the snapshot
 * directory. `socket` is the host path, `vmmPath` the same socket as QEMU names it.
 */
export interface MigrationSocket {
  socket: string;
  vmmPath: string;
  /** Who must be able to connect to a socket the daemon serves (the VMM's uid), when not root. */
  owner: { uid: number; gid: number } | null;
}

/** A stream being received into a file: `done` settles when the file holds all of it. */
export interface Receiving {
  done: Promise<void>;
  close: () => Promise<void>;
}

/**
 * Serves `sock.socket` for one connection from QEMU (`migrate` to `unix:<vmmPath>`) and
 * writes what it sends into `file`. `close` stops serving and removes the socket.
 */
export async function receiveMigration(sock: MigrationSocket, file: string): Promise<Receiving> {
  await rm(sock.socket, { force: true });
  const server = createServer();
  let conn: Socket | null = null;
  const done = new Promise<void>((resolve, reject) => {
    server.once('connection', (c) => {
      conn = c;
      server.close();
      pipeline(c, createWriteStream(file)).then(resolve, reject);
    });
    server.once('error', reject);
  });
  done.catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(sock.socket, () => {
      server.off('error', reject);
      resolve();
    });
  });
  if (sock.owner) await chown(sock.socket, sock.owner.uid, sock.owner.gid);
  const close = async (): Promise<void> => {
    server.close();
    (conn as Socket | null)?.destroy();
    await rm(sock.socket, { force: true });
  };
  return { done, close };
}

/**
 * Sends `file` to the socket QEMU listens on (`migrate-incoming` on `unix:<vmmPath>`,
 * which returns once it listens).
 */
export async function sendMigration(sock: MigrationSocket, file: string): Promise<void> {
  const c = createConnection(sock.socket);
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => {
      c.off('error', reject);
      resolve();
    });
    c.once('error', reject);
  });
  await pipeline(createReadStream(file), c);
}

/** Quotes a path for a /bin/sh (the benchmarks' raw QEMU runs use `exec:` migration). */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The migration settings of a snapshot or a restore, set before `migrate` or
 * `migrate-incoming`. x-ignore-shared must be the same on both sides: with it, RAM blocks
 * mapped shared are left out of the stream (the source's tmpfs file is copied beside it
 * instead) and the stream carries their addresses only. `events` makes QEMU send MIGRATION
 * events (it does not without it). The default bandwidth cap (32 MiB/s) applies even to a
 * paused VM's precopy, so it is lifted. announce-rounds 0 stops the RARP frames QEMU
 * sends with the migrated MAC after a load (on a clone they would teach the bridge the
 * snapshot's MAC on the clone's port).
 */
export async function setMigration(qmp: QmpClient, ignoreShared: boolean, incoming: boolean): Promise<void> {
  await qmp.execute('migrate-set-capabilities', {
    capabilities: [
      { capability: 'x-ignore-shared', state: ignoreShared },
      { capability: 'events', state: true },
    ],
  });
  await qmp.execute('migrate-set-parameters', incoming ? { 'announce-rounds': 0 } : { 'max-bandwidth': 64 * 1024 ** 3 });
}

/**
 * Waits for the migration of `qmp`'s QEMU (outgoing, or incoming on a restore) to complete:
 * MIGRATION events wake it, query-migrate decides (an event can be missed between two
 * commands). Rejects with QEMU's own message when it fails, when the process ends (a
 * failed incoming migration ends QEMU: `why` reads its log) or after timeoutMs.
 */
export async function waitForMigration(
  qmp: QmpClient,
  opts: { gone: Promise<unknown>; why: () => Promise<string>; timeoutMs: number; what: string },
): Promise<void> {
  let wake: () => void = () => undefined;
  const onEvent = (e: QmpEvent): void => {
    if (e.event === 'MIGRATION') wake();
  };
  qmp.on('event', onEvent);
  let ended = false;
  void opts.gone.then(() => {
    ended = true;
    wake();
  });
  const deadline = Date.now() + opts.timeoutMs;
  try {
    for (let interval = 2; ; interval = Math.min(interval * 2, 50)) {
      if (ended) throw new UigniterError('vmm_failed', `${opts.what}: qemu ended: ${await opts.why()}`);
      let info: MigrationInfo;
      try {
        info = await qmp.execute<MigrationInfo>('query-migrate');
      } catch (e) {
        if (qmp.isClosed) {
          await Promise.race([opts.gone, sleep(2000)]);
          throw new UigniterError('vmm_failed', `${opts.what}: qemu ended: ${await opts.why()}`);
        }
        throw e;
      }
      if (info.status === 'completed') return;
      if (info.status === 'failed' || info.status === 'cancelled') {
        throw new UigniterError('vmm_failed', `${opts.what} failed: ${info['error-desc'] ?? (await opts.why())}`);
      }
      if (Date.now() > deadline) {
        await qmp.execute('migrate_cancel').catch(() => undefined);
        throw new UigniterError('timeout', `${opts.what} did not complete within ${opts.timeoutMs} ms (status ${info.status ?? 'none'})`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, interval);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  } finally {
    qmp.off('event', onEvent);
  }
}

/**
 * Waits until QEMU's run state has left `states`. QEMU reports a migration 'completed' a
 * moment before its run state leaves 'finish-migrate' (for 'postmigrate'), and refuses
 * `cont` until then ("Migration is not finalized yet").
 */
export async function waitRunStateLeaves(qmp: QmpClient, states: string[], timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (let interval = 1; ; interval = Math.min(interval * 2, 20)) {
    const { status } = await qmp.execute<{ status: string }>('query-status');
    if (!states.includes(status)) return status;
    if (Date.now() > deadline) throw new UigniterError('timeout', `QEMU stayed in state '${status}' for ${timeoutMs} ms after the migration`);
    await sleep(interval);
  }
}
