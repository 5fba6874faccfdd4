import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { firstReply, freePort, ROOT } from './lib.js';

/**
 * The host-process baseline of the benchmarks: the same test app as the VMs, run by
 * `node` on the host. The fixture listens on a fixed port; the copy listens on $PORT.
 */
export async function copyFixtureForHost(fixtureName: string, appPort: number, dir: string): Promise<void> {
  const fixture = join(ROOT, 'test', 'fixtures', fixtureName);
  const src = await readFile(join(fixture, 'server.js'), 'utf8');
  const literal = `server.listen(${appPort},`;
  if (src.split(literal).length !== 2) throw new Error(`the fixture's server.js no longer has exactly one '${literal}'; update bench/host-app.ts`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'server.js'), src.replace(literal, 'server.listen(Number(process.env.PORT),'));
  await copyFile(join(fixture, 'package.json'), join(dir, 'package.json'));
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

/** `node server.js` of the copy spawned on the host, timed to its first reply (ms). */
export async function timeHostApp(appDir: string, timeoutMs: number, everyMs: number): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, ['server.js'], { cwd: appDir, env: { ...process.env, PORT: String(port) }, stdio: 'ignore' });
  const exited = new AbortController();
  child.once('exit', (code) => exited.abort(`exited with ${code}`));
  try {
    return (await firstReply(`http://127.0.0.1:${port}/`, t0 + timeoutMs, { everyMs, signal: exited.signal })) - t0;
  } finally {
    await stopChild(child);
  }
}
