/**
 * Progress for long host work (kernel build, image packing). On a terminal one line is
 * redrawn in place with the stage, the elapsed time and a bar where the total is known;
 * elsewhere (CI logs, pipes) plain lines are printed at stage changes and every 10%.
 */
export interface Progress {
  stage(name: string, total?: number): void;
  /** Sets the amount done in the current stage (same unit as its total). */
  advance(done: number): void;
  info(message: string): void;
  finish(message: string): void;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  tty?: boolean;
  label: string;
  now?: () => number;
}

function clock(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? Boolean(stream.isTTY);
  const now = opts.now ?? Date.now;
  const started = now();
  let stageName = '';
  let total: number | undefined;
  let done = 0;
  let lastDecile = -1;
  let lastDraw = 0;

  const render = (): string => {
    const elapsed = clock(now() - started);
    if (total && total > 0) {
      const frac = Math.min(done / total, 0.99);
      const width = 28;
      const filled = Math.round(frac * width);
      return `[${opts.label}] ${stageName.padEnd(12)} ${elapsed} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.floor(frac * 100)).padStart(2)}%`;
    }
    return `[${opts.label}] ${stageName.padEnd(12)} ${elapsed}`;
  };
  const draw = (force = false): void => {
    if (!tty) return;
    const t = now();
    if (!force && t - lastDraw < 100) return;
    lastDraw = t;
    stream.write(`\r\x1b[2K${render()}`);
  };
  const plain = (line: string): void => {
    if (tty) stream.write(`\r\x1b[2K${line}\n`);
    else stream.write(`${line}\n`);
  };

  return {
    stage(name, stageTotal) {
      stageName = name;
      total = stageTotal;
      done = 0;
      lastDecile = -1;
      if (tty) draw(true);
      else plain(`[${opts.label}] ${name} (${clock(now() - started)} elapsed)`);
    },
    advance(n) {
      done = n;
      if (tty) return draw();
      if (total && total > 0) {
        const decile = Math.floor(Math.min(done / total, 0.99) * 10);
        if (decile > lastDecile) {
          lastDecile = decile;
          if (decile > 0) plain(render());
        }
      }
    },
    info(message) {
      plain(`[${opts.label}] ${message}`);
      draw(true);
    },
    finish(message) {
      plain(`[${opts.label}] ${message} (${clock(now() - started)})`);
    },
  };
}
