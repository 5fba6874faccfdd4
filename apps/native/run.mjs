#!/usr/bin/env node
// Stable entry point for `npm run apps:native`; the runner itself is TypeScript
// compiled with the apps (npx tsc -b apps).
import { existsSync } from 'node:fs';

const compiled = new URL('./dist/run.js', import.meta.url);
if (!existsSync(compiled)) {
  console.error('apps are not built: run `npx tsc -b apps` first');
  process.exit(1);
}
await import(compiled.href);
