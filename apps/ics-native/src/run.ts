import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runScenario, SCENARIOS, type ScenarioName } from '@uigniter-demo/ics-scenarios';
import { startIcsCluster } from './ics-cluster.js';

/** `node apps/ics-native/dist/run.js [scenario...]`: runs the scenarios natively and prints each report as JSON. */
const wanted = process.argv.slice(2);
for (const name of wanted) {
  if (!(SCENARIOS as readonly string[]).includes(name)) {
    console.error(`unknown scenario ${name}; known: ${SCENARIOS.join(', ')}`);
    process.exit(2);
  }
}
const dataDir = mkdtempSync(join(tmpdir(), 'ics-native-'));
const cluster = await startIcsCluster({ dataDir, echo: process.env['ECHO'] === '1' });
let failed = 0;
try {
  const timeFactor = Number(process.env['TIME_FACTOR'] ?? '1');
  for (const name of (wanted.length > 0 ? wanted : SCENARIOS) as ScenarioName[]) {
    const report = await runScenario(name, cluster.scenarioTarget(timeFactor, (line) => console.error(line)));
    console.log(JSON.stringify(report));
    if (!report.passed) failed++;
  }
} finally {
  await cluster.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(failed === 0 ? 0 : 1);
