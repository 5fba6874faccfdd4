import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export class ObjectTooLargeError extends Error {
  constructor(readonly limitBytes: number) {
    super(`object exceeds ${limitBytes} bytes`);
  }
}

export class ChecksumMismatchError extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`sha256 is ${actual}, expected ${expected}`);
  }
}

export interface StoredObject {
  size: number;
  sha256: string;
}

/** An object opened for reading, already verified against its stored checksum. */
export interface VerifiedObject extends StoredObject {
  /** A stream of exactly the bytes that were verified; consume or destroy it. */
  stream: Readable;
}

/**
 * Objects as files: `<id>.data` with its sha256 in `<id>.sha256` beside it
 * (ids are limited to OBJECT_ID_PATTERN, a safe file-name alphabet).
 * (The suffixes keep every id's two files distinct from every other id's.)
 * Writes go to `tmp/` first and are fsynced and renamed into place, so a
 * crash leaves either the old object or the new one, never a torn file.
 */
export class ObjectStore {
  readonly objectsDir: string;
  private readonly tmpDir: string;

  constructor(dataDir: string) {
    this.objectsDir = join(dataDir, 'objects');
    this.tmpDir = join(dataDir, 'tmp');
  }

  /** Creates the directories and removes temp files a crash left behind. */
  async init(): Promise<number> {
    await mkdir(this.objectsDir, { recursive: true });
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
    return (await this.list()).length;
  }

  private dataPath(id: string): string {
    return join(this.objectsDir, `${id}.data`);
  }

  private checksumPath(id: string): string {
    return join(this.objectsDir, `${id}.sha256`);
  }

  /**
   * Stores the bytes of `body` under `id`. If `expectedSha256` is given and
   * does not match, nothing is stored. Over `limitBytes` the rest of the body
   * is still consumed (and discarded) so the client gets an answer, not a reset.
   */
  async put(id: string, body: Readable, limitBytes: number, expectedSha256?: string): Promise<StoredObject> {
    const tmpData = join(this.tmpDir, `${id}.${randomBytes(6).toString('hex')}.data`);
    const tmpSum = `${tmpData}.sha256`;
    try {
      const hash = createHash('sha256');
      let size = 0;
      let overLimit = false;
      const meter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          size += chunk.length;
          if (size > limitBytes) overLimit = true;
          if (overLimit) {
            done();
            return;
          }
          hash.update(chunk);
          done(null, chunk);
        },
      });
      const file = await open(tmpData, 'wx');
      try {
        const sink = new Writable({
          write(chunk: Buffer, _encoding, done) {
            file.write(chunk).then(() => done(), done);
          },
          final(done) {
            file.sync().then(() => done(), done);
          },
        });
        await pipeline(body, meter, sink);
        if (overLimit) throw new ObjectTooLargeError(limitBytes);
      } finally {
        await file.close();
      }
      const sha256 = hash.digest('hex');
      if (expectedSha256 !== undefined && expectedSha256 !== sha256) {
        throw new ChecksumMismatchError(expectedSha256, sha256);
      }
      await writeDurably(tmpSum, sha256);
      // Checksum first: in between, a new object reads as absent and a
      // replaced one as a checksum mismatch, never as unverified bytes.
      await rename(tmpSum, this.checksumPath(id));
      await rename(tmpData, this.dataPath(id));
      await syncDirectory(this.objectsDir);
      return { size, sha256 };
    } finally {
      await rm(tmpData, { force: true });
      await rm(tmpSum, { force: true });
    }
  }

  /** Size and recorded checksum, without reading the data; undefined if absent. */
  async stat(id: string): Promise<StoredObject | undefined> {
    try {
      const info = await stat(this.dataPath(id));
      return { size: info.size, sha256: await this.recordedChecksum(id) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Opens `id`, hashes it in full and compares with the recorded checksum
   * before handing out a stream, so damaged bytes are never served. Both the
   * check and the stream read the same open file.
   */
  async openVerified(id: string): Promise<VerifiedObject | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(this.dataPath(id), 'r');
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    try {
      const expected = await this.recordedChecksum(id);
      const { size, sha256 } = await hashFile(handle);
      if (sha256 !== expected) throw new ChecksumMismatchError(expected, sha256);
      if (size === 0) {
        await handle.close();
        return { size, sha256, stream: Readable.from([]) };
      }
      // Bounded to the verified length: bytes appended since are not served.
      return { size, sha256, stream: handle.createReadStream({ start: 0, end: size - 1 }) };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** Removes `id`; false if it did not exist. */
  async delete(id: string): Promise<boolean> {
    let existed = true;
    try {
      await unlink(this.dataPath(id));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      existed = false;
    }
    await rm(this.checksumPath(id), { force: true });
    await syncDirectory(this.objectsDir);
    return existed;
  }

  /** Ids of all stored objects, sorted. */
  async list(): Promise<string[]> {
    const names = await readdir(this.objectsDir);
    return names
      .filter((name) => name.endsWith('.data'))
      .map((name) => name.slice(0, -'.data'.length))
      .sort();
  }

  private async recordedChecksum(id: string): Promise<string> {
    try {
      return (await readFile(this.checksumPath(id), 'utf8')).trim();
    } catch (err) {
      if (isNotFound(err)) throw new ChecksumMismatchError('(missing checksum file)', '?');
      throw err;
    }
  }
}

async function hashFile(handle: FileHandle): Promise<StoredObject> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(256 * 1024);
  let size = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, size);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    size += bytesRead;
  }
  return { size, sha256: hash.digest('hex') };
}

async function writeDurably(path: string, content: string): Promise<void> {
  const file = await open(path, 'wx');
  try {
    await file.writeFile(content);
    await file.sync();
  } finally {
    await file.close();
  }
}

/** Makes renames and unlinks in `dir` survive a power cut. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
