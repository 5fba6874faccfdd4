import { invalid } from '../core/errors.js';
import type { RunBody } from './schemas.js';

const KEYS = new Set(['image_name', 'cmdline', 'read_only']);

/**
 * Splits a command line into arguments: whitespace separates, single and double quotes
 * group, backslash escapes. No globbing, variables or operators: the result goes to exec,
 * not to a shell (so a shell parser such as shell-quote would do too much).
 */
export function splitCmdline(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      has = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
    }
  }
  if (quote) throw invalid('cmdline', 'cmdline has an unterminated quote');
  if (has || cur) out.push(cur);
  return out;
}

export function isLegacyBody(body: unknown): body is Record<string, unknown> {
  return typeof body === 'object' && body !== null && 'image_name' in body;
}

/**
 * The names a cmdline's first word may use for an image's program: the image's name and
 * each word of its entry point that is not an option (`--no-memory-reducer`), as a path
 * and as a file name. In the original Uigniter
 * the cmdline was OSv's whole command line, program first (`curl http://...`); ours runs
 * the image's entry point, so such a first word is dropped and the rest are its arguments.
 */
export function programNames(image: { name: string; entrypoint: string[] }): Set<string> {
  const names = new Set<string>([image.name]);
  for (const w of image.entrypoint) {
    if (w.startsWith('-')) continue;
    names.add(w);
    names.add(w.slice(w.lastIndexOf('/') + 1));
  }
  names.delete('');
  return names;
}

/**
 * The body of the original Uigniter (`{"image_name", "cmdline", "read_only"}`) as ours:
 * cmdline replaces the image's arguments (a first word naming the program is dropped: see
 * programNames); read_only is our readOnly (the VM's root is the
 * image with no writable layer over it; /tmp stays a writable tmpfs).
 */
export function fromLegacyBody(body: Record<string, unknown>, program: Set<string> = new Set()): RunBody {
  for (const k of Object.keys(body)) if (!KEYS.has(k)) throw invalid(k, `unknown field '${k}'`);
  if (typeof body.image_name !== 'string' || body.image_name === '') throw invalid('image_name', 'image_name must be a non-empty string');
  if (body.cmdline !== undefined && typeof body.cmdline !== 'string') throw invalid('cmdline', 'cmdline must be a string');
  if (body.read_only !== undefined && typeof body.read_only !== 'boolean') throw invalid('read_only', 'read_only must be a boolean');
  let args = typeof body.cmdline === 'string' && body.cmdline.trim() !== '' ? splitCmdline(body.cmdline) : undefined;
  if (args && args.length > 0 && program.has(args[0]!)) args = args.slice(1);
  return { image: body.image_name, ...(args ? { args } : {}), ...(body.read_only === true ? { readOnly: true } : {}) };
}
