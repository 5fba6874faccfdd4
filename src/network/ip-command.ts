import { run } from '../util/exec.js';

/**
 * iproute2, optionally inside a network namespace. Several commands go in one `ip -batch`
 * process: spawning `ip` costs a few milliseconds each, which adds up on the create path.
 */
export class IpCommand {
  constructor(private readonly netns: string | null) {}

  private base(): string[] {
    return this.netns ? ['-n', this.netns] : [];
  }

  async run(...args: string[]): Promise<string> {
    return (await run('ip', [...this.base(), ...args])).stdout;
  }

  async batch(lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    await run('ip', [...this.base(), '-batch', '-'], { input: `${lines.join('\n')}\n` });
  }

  async json<T>(...args: string[]): Promise<T> {
    const out = await this.run('-j', ...args);
    return (out.trim() ? JSON.parse(out) : []) as T;
  }

  async linkExists(name: string): Promise<boolean> {
    try {
      await this.run('link', 'show', 'dev', name);
      return true;
    } catch {
      return false;
    }
  }
}

export async function netnsExists(name: string): Promise<boolean> {
  const out = await run('ip', ['netns', 'list']).then((r) => r.stdout).catch(() => '');
  return out.split('\n').some((l) => l.split(' ')[0] === name);
}

/** Runs a command inside a namespace (nft, sysctl), where iproute2's -n does not apply. */
export function inNetns(netns: string, cmd: string, args: string[], input?: string): Promise<{ stdout: string }> {
  return run('ip', ['netns', 'exec', netns, cmd, ...args], input === undefined ? {} : { input });
}
