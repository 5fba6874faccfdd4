import { readFile, stat } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import { invalid } from '../core/errors.js';
import type { ReadyCheck } from '../core/models.js';
import { exists } from '../util/fs.js';

/** How an app wants to run: from package.json's "uigniter" field, uigniter.json, or flags. */
export interface AppConfig {
  entry: string;
  args: string[];
  env: Record<string, string>;
  ports: number[];
  ready: ReadyCheck | null;
  vcpus: number | null;
  memMiB: number | null;
  minMemMiB: number | null;
}

export interface PackageJson {
  name?: string;
  version?: string;
  main?: string;
  files?: string[];
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  uigniter?: unknown;
}

export interface AppDir {
  dir: string;
  pkg: PackageJson | null;
  config: AppConfig;
}

const FIELD = 'uigniter';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function port(v: unknown, where: string): number {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535) {
    throw invalid(where, `${where} must be a port number 1-65535`);
  }
  return v as number;
}

function positive(v: unknown, where: string): number | null {
  if (v === undefined) return null;
  if (!Number.isInteger(v) || (v as number) < 1) throw invalid(where, `${where} must be a positive integer`);
  return v as number;
}

export function parseReady(v: unknown, where: string): ReadyCheck | null {
  if (v === undefined) return null;
  if (v === 'none') return { kind: 'none' };
  if (isRecord(v) && 'tcp' in v) return { kind: 'tcp', port: port(v.tcp, `${where}.tcp`) };
  if (isRecord(v) && isRecord(v.http)) {
    const path = v.http.path ?? '/';
    if (typeof path !== 'string' || !path.startsWith('/') || /[\s%]/.test(path)) {
      throw invalid(`${where}.http.path`, `${where}.http.path must be an absolute URL path without spaces`);
    }
    return { kind: 'http', port: port(v.http.port, `${where}.http.port`), path };
  }
  throw invalid(where, `${where} must be "none", {"tcp": PORT} or {"http": {"port": PORT, "path": "/..."}}`);
}

function parseConfig(raw: unknown, where: string, defaultEntry: string): AppConfig {
  const c = raw === undefined ? {} : raw;
  if (!isRecord(c)) throw invalid(where, `${where} must be an object`);
  const entry = c.entry ?? defaultEntry;
  if (typeof entry !== 'string' || entry.length === 0) throw invalid(`${where}.entry`, `${where}.entry must be a path`);
  const args = c.args ?? [];
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
    throw invalid(`${where}.args`, `${where}.args must be an array of strings`);
  }
  const env = c.env ?? {};
  if (!isRecord(env) || !Object.values(env).every((v) => typeof v === 'string')) {
    throw invalid(`${where}.env`, `${where}.env must map names to strings`);
  }
  const ports = c.ports ?? [];
  if (!Array.isArray(ports)) throw invalid(`${where}.ports`, `${where}.ports must be an array of ports`);
  return {
    entry,
    args: args as string[],
    env: env as Record<string, string>,
    ports: ports.map((p, i) => port(p, `${where}.ports[${i}]`)),
    ready: parseReady(c.ready, `${where}.ready`),
    vcpus: positive(c.vcpus, `${where}.vcpus`),
    memMiB: positive(c.memMiB, `${where}.memMiB`),
    minMemMiB: positive(c.minMemMiB, `${where}.minMemMiB`),
  };
}

async function readJson(path: string): Promise<unknown> {
  const text = await readFile(path, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw invalid('dir', `${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Reads and checks an app directory; every problem names the file or field at fault. */
export async function readAppDir(dir: string): Promise<AppDir> {
  const st = await stat(dir).catch(() => null);
  if (!st) throw invalid('dir', `app directory '${dir}' does not exist`);
  if (!st.isDirectory()) throw invalid('dir', `'${dir}' is not a directory`);
  const pkgPath = join(dir, 'package.json');
  const cfgPath = join(dir, 'uigniter.json');
  const rawPkg = (await exists(pkgPath)) ? await readJson(pkgPath) : null;
  if (rawPkg !== null && !isRecord(rawPkg)) throw invalid('dir', `${pkgPath} must hold a JSON object`);
  const pkg = rawPkg as PackageJson | null;
  let config: AppConfig;
  if (await exists(cfgPath)) {
    config = parseConfig(await readJson(cfgPath), 'uigniter.json', pkg?.main ?? 'index.js');
  } else if (pkg) {
    config = parseConfig(pkg[FIELD], `package.json#${FIELD}`, pkg.main ?? 'index.js');
  } else {
    throw invalid('dir', `'${dir}' is not an app directory: it has no package.json or uigniter.json`);
  }
  const entry = normalize(config.entry);
  if (entry.startsWith('..') || entry.startsWith('/')) {
    throw invalid('entry', `entry '${config.entry}' must be a path inside the app directory`);
  }
  config.entry = entry;
  return { dir, pkg, config };
}
