import { open } from 'node:fs/promises';

export interface ElfInfo {
  /** The program interpreter (dynamic loader) path, absent for a static binary. */
  interpreter?: string;
  machine: number;
}

const PT_INTERP = 3;
export const EM_X86_64 = 62;

/** Reads just enough of an ELF file to tell a static binary from a dynamic one; null if not ELF. */
export async function readElf(path: string): Promise<ElfInfo | null> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(64);
    const { bytesRead } = await fh.read(head, 0, 64, 0);
    if (bytesRead < 64 || head.readUInt32BE(0) !== 0x7f454c46) return null;
    if (head[4] !== 2 || head[5] !== 1) return { machine: -1 }; // only 64-bit little endian is ours
    const machine = head.readUInt16LE(18);
    const phoff = Number(head.readBigUInt64LE(32));
    const phentsize = head.readUInt16LE(54);
    const phnum = head.readUInt16LE(56);
    const table = Buffer.alloc(phentsize * phnum);
    await fh.read(table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) {
      const at = i * phentsize;
      if (table.readUInt32LE(at) !== PT_INTERP) continue;
      const offset = Number(table.readBigUInt64LE(at + 8));
      const size = Number(table.readBigUInt64LE(at + 32));
      const buf = Buffer.alloc(Math.min(size, 4096));
      await fh.read(buf, 0, buf.length, offset);
      return { machine, interpreter: buf.toString('utf8').replace(/\0.*$/s, '') };
    }
    return { machine };
  } finally {
    await fh.close();
  }
}
