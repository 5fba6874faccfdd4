// Builds the dashboard: type-checks ui/src, then bundles it with esbuild into dist/ui/.
//   node ui/build.mjs        (from any directory)
// Output: dist/ui/index.html, dist/ui/assets/app.js, dist/ui/assets/app.css (uPlot's CSS included).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const uiDir = dirname(fileURLToPath(import.meta.url));
const root = dirname(uiDir);
const outDir = join(root, 'dist', 'ui');
const require = createRequire(import.meta.url);

function typeCheck() {
  const tsc = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(uiDir, 'tsconfig.json'), '--noEmit'], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('ui: type-check failed');
    process.exit(1);
  }
}

async function bundle() {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, 'assets'), { recursive: true });
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: [join(uiDir, 'src', 'main.tsx')],
    outfile: join(outDir, 'assets', 'app.js'), // its CSS imports land in app.css next to it
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
  });
  copyFileSync(join(uiDir, 'index.html'), join(outDir, 'index.html'));
  for (const [file, info] of Object.entries(result.metafile.outputs)) {
    console.log(`ui: ${file} ${(info.bytes / 1024).toFixed(1)} KiB`);
  }
}

typeCheck();
await bundle();
