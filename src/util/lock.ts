import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { processAlive as alive } from './process.js';

/**
 * A cross-process lock on a directory name (mkdir is atomic). A lock whose holder died is
 * taken over, so a killed build never blocks the next one. Used for cache builds that
 * several processes (tests in parallel, a CLI and a daemon) may start at once.
 */
export async function withDirLock<T>(lockDir: string, fn: () => Promise<T>, onWait?: () => void): Promise<T> {
  let waited = false;
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(`${lockDir}/pid`, String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = Number(await readFile(`${lockDir}/pid`, 'utf8').catch(() => '0'));
      const age = Date.now() - (await stat(lockDir).then((s) => s.mtimeMs).catch(() => Date.now()));
      // No pid after 10 s means the holder died between mkdir and writing its pid.
      if ((holder > 0 && !alive(holder)) || (holder === 0 && age > 10_000)) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (!waited) {
        waited = true;
        onWait?.();
      }
      await sleep(holder > 0 ? 250 : 50);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}
