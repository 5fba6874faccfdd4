export { runScenario, SCENARIOS, BOUNDS, type ScenarioName } from './scenarios.js';
export type { ScenarioReport, ScenarioTarget, AlarmReport } from './scenario-target.js';
