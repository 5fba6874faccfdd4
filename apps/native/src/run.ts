import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { makeSamplePng } from '@uigniter-demo/common/sample-png';
import { startNativeCluster } from './cluster.js';

const USAGE = `usage: npm run apps:native -- [--workers N] [--data DIR] [--base-port P] [--lease-sec S]

Runs kvstore, db, storage, master and N workers as local processes.
Build first: npx tsc -b apps`;

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    data: { type: 'string', default: '.uigniter/apps-native' },
    'base-port': { type: 'string', default: '9000' },
    'lease-sec': { type: 'string', default: '30' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const workers = Number(values.workers);
const basePort = Number(values['base-port']);
const leaseSec = Number(values['lease-sec']);
if (!Number.isInteger(workers) || workers < 0 || !Number.isInteger(basePort) || !(leaseSec > 0)) {
  console.error(USAGE);
  process.exit(2);
}
const dataDir = resolve(values.data);
mkdirSync(dataDir, { recursive: true });

const cluster = await startNativeCluster({ dataDir, workers, basePort, leaseSec, echo: true });
const sample = join(dataDir, 'sample.png');
writeFileSync(sample, makeSamplePng(1, 320, 200));
const master = cluster.urls.master ?? '';
console.log(`
all services healthy; data in ${dataDir}
  master:    ${master}
  registry:  curl ${cluster.urls.kvstore}/
  upload:    curl -F image=@${sample} ${master}/task
  status:    curl ${master}/task/1
  result:    curl -o result.png ${master}/task/1/result
  stats:     curl ${master}/stats
Ctrl-C stops everything.
`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  console.log('stopping services...');
  void cluster.stop().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
