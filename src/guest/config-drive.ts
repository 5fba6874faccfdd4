import { writeFile } from 'node:fs/promises';
import type { ReadyCheck } from '../core/models.js';

/**
 * The config drive: how a VM's spec reaches the guest init (guest/init/init.c).
 *
 * A raw virtio-blk disk, padded to 512-byte sectors, holding text:
 *
 *   UIGNITER-CONFIG 1
 *   <key> <token> [<token>...]
 *   ...
 *   end
 *
 * Every token is percent-encoded: each byte outside [A-Za-z0-9._~/:=@+,-] becomes %XX, so
 * spaces, newlines, '%' and any other byte in env values or arguments survive unchanged and
 * a token never contains a separator. NUL cannot be carried (the kernel's argv and environ
 * cannot hold it either) and is refused.
 *
 * A disk rather than the kernel command line because the command line is limited to 2 KiB
 * on x86 and is visible to every process in /proc/cmdline.
 */
export interface GuestConfig {
  hostname: string;
  argv: string[];
  env: Record<string, string>;
  workdir: string;
  /** Layer ids, top first. */
  layers: string[];
  volumes: { uuid: string; mountPath: string; readOnly: boolean }[];
  hosts: { ip: string; name: string }[];
  dns: string[];
  search: string | null;
  ready: ReadyCheck;
  stopTimeoutMs: number;
  /** Host wall-clock time in seconds, for guests without an RTC. */
  time: number;
  /**
   * Runtime hooks the init loads into the app when the image has them: 'node' preloads
   * /usr/lib/uigniter/node-clone-hooks.cjs (from the Node runtime layer) so the app's
   * randomness is renewed in clones restored from one snapshot. Optional: absent is null.
   */
  appHooks?: 'node' | null;
  /**
   * `root ro`: the init mounts the image's layers with no writable layer over them (the
   * app's writes to its root fail with EROFS; /tmp, /run, /dev/shm and volumes are
   * writable). Optional: absent is a writable root (a tmpfs overlay, lost at stop).
   */
  rootReadOnly?: boolean;
}

export const CONFIG_MAGIC = 'UIGNITER-CONFIG 1';
export const CONFIG_MAX_BYTES = 1024 * 1024;

const SAFE = /[A-Za-z0-9._~/:=@+,-]/;

export function encodeToken(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    if (byte === 0) throw new Error('NUL bytes cannot be passed to the guest');
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && SAFE.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function decodeToken(token: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '%') {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(token.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

export function renderConfig(c: GuestConfig): string {
  const line = (key: string, ...values: (string | number)[]): string =>
    [key, ...values.map((v) => encodeToken(String(v)))].join(' ');
  const lines = [CONFIG_MAGIC, line('hostname', c.hostname), line('workdir', c.workdir)];
  for (const a of c.argv) lines.push(line('arg', a));
  for (const [k, v] of Object.entries(c.env)) lines.push(line('env', `${k}=${v}`));
  for (const l of c.layers) lines.push(line('layer', l));
  for (const v of c.volumes) lines.push(line('volume', v.uuid.replace(/-/g, '').toLowerCase(), v.mountPath, v.readOnly ? 'ro' : 'rw'));
  for (const h of c.hosts) lines.push(line('host', h.ip, h.name));
  for (const d of c.dns) lines.push(line('dns', d));
  if (c.search) lines.push(line('search', c.search));
  if (c.ready.kind === 'none') lines.push(line('ready', 'none'));
  else if (c.ready.kind === 'tcp') lines.push(line('ready', 'tcp', c.ready.port));
  else lines.push(line('ready', 'http', c.ready.port, c.ready.path));
  lines.push(line('stop-timeout', c.stopTimeoutMs));
  lines.push(line('time', Math.floor(c.time)));
  if (c.appHooks) lines.push(line('app-hooks', c.appHooks));
  if (c.rootReadOnly) lines.push(line('root', 'ro'));
  lines.push('end', '');
  return lines.join('\n');
}

/** Writes the drive image: the text, zero-padded to whole sectors. */
export async function writeConfigDrive(path: string, c: GuestConfig): Promise<void> {
  const text = Buffer.from(renderConfig(c), 'utf8');
  if (text.length > CONFIG_MAX_BYTES) throw new Error(`VM config is ${text.length} bytes; the limit is ${CONFIG_MAX_BYTES}`);
  const size = Math.max(4096, Math.ceil(text.length / 512) * 512);
  const buf = Buffer.alloc(size);
  text.copy(buf);
  await writeFile(path, buf, { mode: 0o600 });
}
