/**
 * bench/spawn: what one host command (`ip -V`, the binary the daemon runs most) costs a
 * process of the daemon's size, spawned two ways in the same run, rounds alternating:
 *
 *   here     spawned from this process (util/exec's spawnHere: Node's spawn forks the caller)
 *   helper   sent to the command helper (util/command-helper), which spawns it
 *
 * This process first grows to about HEAP_MIB MiB resident (JavaScript objects, so that V8's
 * heap and its concurrent GC are there as in the daemon; 150 by default: a daemon with 100
 * VMs held 131-138 MiB here). Each round runs PER_ROUND commands one after another. Per
 * command, from this side: the host's busy CPU (/proc/stat, all processes), this process's
 * CPU (process.cpuUsage: the caller's share, fork included), the wall time from the spawn
 * request to the command's output received; per round, the largest delay of this
 * process's event loop (perf_hooks, 1 ms resolution): what a daemon serving requests would
 * have stalled.
 *
 *   node dist/bench/spawn.js            (RUNS=20 rounds per way, PER_ROUND=50, HEAP_MIB=150)
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { CommandHelper } from '../src/util/command-helper.js';
import { spawnHere } from '../src/util/exec.js';
import { hostCpuMs, printTable, spread, spreadRow } from './lib.js';

const RUNS = Number(process.env.RUNS ?? 20);
const PER_ROUND = Number(process.env.PER_ROUND ?? 50);
const HEAP_MIB = Number(process.env.HEAP_MIB ?? 150);

type Way = 'here' | 'helper';

interface Round {
  hostMs: number;
  callerMs: number;
  wallMs: number;
  loopMaxMs: number;
}

/** Keeps this process at about `mib` MiB resident: small objects in arrays, as a heap of records. */
function growHeap(mib: number): unknown[] {
  const keep: unknown[] = [];
  while (process.memoryUsage().rss < mib * 1024 * 1024) {
    const chunk: { id: string; n: number; tags: string[] }[] = [];
    for (let i = 0; i < 10_000; i++) chunk.push({ id: `vm-${i}-${Math.random()}`, n: i, tags: ['a', 'b', String(i)] });
    keep.push(chunk);
  }
  return keep;
}

async function round(way: Way, helper: CommandHelper): Promise<Round> {
  const go = way === 'here' ? spawnHere : helper.run.bind(helper);
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const h0 = await hostCpuMs();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  loop.enable();
  for (let i = 0; i < PER_ROUND; i++) {
    const out = (await go('ip', ['-V'])).stdout;
    if (!out.includes('iproute2')) throw new Error(`ip -V printed ${JSON.stringify(out)}`);
  }
  loop.disable();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const h1 = await hostCpuMs();
  return { hostMs: (h1.busy - h0.busy) / PER_ROUND, callerMs: (c.user + c.system) / 1000 / PER_ROUND, wallMs: wall / PER_ROUND, loopMaxMs: loop.max / 1e6 };
}

async function main(): Promise<void> {
  const keep = growHeap(HEAP_MIB);
  const rss = process.memoryUsage().rss / 1024 / 1024;
  const helper = new CommandHelper();
  const rounds: Record<Way, Round[]> = { here: [], helper: [] };
  try {
    await round('here', helper); // warm-up of both, untimed
    await round('helper', helper);
    const helperRss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${helper.pid()}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
    process.stderr.write(`this process: ${rss.toFixed(0)} MiB resident; the helper: ${helperRss.toFixed(0)} MiB\n`);
    for (let i = 0; i < RUNS; i++) {
      const order: Way[] = i % 2 === 0 ? ['here', 'helper'] : ['helper', 'here'];
      for (const w of order) rounds[w].push(await round(w, helper));
    }
  } finally {
    helper.close();
  }
  const col = (w: Way, k: keyof Round): number[] => rounds[w].map((r) => r[k]);
  process.stdout.write(`\nbench/spawn: \`ip -V\` from a process of ${rss.toFixed(0)} MiB resident, ${RUNS} rounds of ${PER_ROUND} per way, alternating\n\n`);
  printTable(
    ['per command (per round: spread of the rounds)', 'n', 'min', 'p50', 'p99', 'max'],
    [
      spreadRow('here: host CPU, ms (all processes)', col('here', 'hostMs'), 1, 2),
      spreadRow('helper: host CPU, ms (all processes)', col('helper', 'hostMs'), 1, 2),
      spreadRow("here: caller's CPU, ms", col('here', 'callerMs'), 1, 2),
      spreadRow("helper: caller's CPU, ms", col('helper', 'callerMs'), 1, 2),
      spreadRow('here: spawn -> output received, ms', col('here', 'wallMs'), 1, 2),
      spreadRow('helper: spawn -> output received, ms', col('helper', 'wallMs'), 1, 2),
      spreadRow("here: caller's event loop, largest delay in a round, ms", col('here', 'loopMaxMs'), 1, 1),
      spreadRow("helper: caller's event loop, largest delay in a round, ms", col('helper', 'loopMaxMs'), 1, 1),
    ],
  );
  const ratio = (k: keyof Round): string => (spread(col('helper', k)).p50 / spread(col('here', k)).p50).toFixed(2);
  process.stdout.write(
    `\nhelper / here (p50): host CPU ${ratio('hostMs')}, caller's CPU ${ratio('callerMs')}, wall ${ratio('wallMs')}, largest event-loop delay ${ratio('loopMaxMs')}\n`,
  );
  if (keep.length === 0) throw new Error('no heap was grown');
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
