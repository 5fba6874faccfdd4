import { useMemo } from 'preact/hooks';
import { PlantLevelsChart, PlantTempChart } from '../components/plant-charts';
import { ago, fixed } from '../format';
import type { PlantSample } from '../live/plant-history';
import { plantSeries } from '../live/plant-series';
import { live } from '../live/store';
import { useObservable } from '../observable';
import { PlantAlarms, PlantControllers, PlantFailovers } from './plant-tables';

/** `plant` events come every 2 s while the industrial example runs: this long without one means it stopped. */
const STALE_MS = 10_000;

/** The industrial example: trends, valves and faults, controllers and fail-overs, alarms. */
export function PlantSection({ now }: { now: number }) {
  const plant = useObservable(live, (d) => d.plant);
  const series = useMemo(() => plantSeries(plant.samples), [plant.samples]);
  const last = plant.samples[plant.samples.length - 1];
  const running = last !== undefined && now - last.at < STALE_MS;

  return (
    <div class="panel" data-testid="plant-section">
      <h2>
        Industrial plant{' '}
        <span class={`small ${running ? 'ok-text' : 'muted'}`} data-testid="plant-status">
          {running ? 'running' : 'not running'}
          {!running && last ? ` (last update ${ago(last.at, now)})` : ''}
        </span>
        <span class="chart-counts small">
          <span>
            <b data-testid="plant-points">{plant.samples.length}</b> points
          </span>
        </span>
      </h2>
      {!last ? (
        <p class="muted" data-testid="plant-not-running">
          Not running: no plant update has come. Start the industrial example (<code>uigniter demo industrial</code>) and its trends show here.
        </p>
      ) : (
        <>
          <div class="grid-2">
            <div>
              <h3>Tank levels</h3>
              <PlantLevelsChart series={series} />
            </div>
            <div>
              <h3>Temperature</h3>
              <PlantTempChart series={series} />
            </div>
          </div>
          <PlantNow sample={last} />
          <div class="grid-3">
            <PlantControllers controllers={last.stats.controllers} />
            <PlantFailovers failovers={plant.failovers} />
            <PlantAlarms alarms={last.stats.alarms} />
          </div>
        </>
      )}
    </div>
  );
}

function percent(fraction: number): string {
  return `${Math.round(fraction * 100)} %`;
}

/** The latest values: levels and temperature against their setpoints, valve positions, faults. */
function PlantNow({ sample }: { sample: PlantSample }) {
  const { plant, setpoints } = sample.stats;
  const withSetpoint = (value: number, setpoint: number | undefined, digits: number, unit: string): string =>
    `${fixed(value, digits)} ${unit}` + (setpoint === undefined ? '' : ` (setpoint ${fixed(setpoint, digits)})`);
  return (
    <dl class="kv-grid plant-now">
      <dt>level1</dt>
      <dd data-testid="plant-level1">{withSetpoint(plant.levels.level1, setpoints?.level1, 2, 'm')}</dd>
      <dt>temperature</dt>
      <dd data-testid="plant-temp">{withSetpoint(plant.temp, setpoints?.temp, 1, '°C')}</dd>
      <dt>level2</dt>
      <dd data-testid="plant-level2">{withSetpoint(plant.levels.level2, setpoints?.level2, 2, 'm')}</dd>
      <dt>valves</dt>
      <dd data-testid="plant-valves">
        inflow1 {percent(plant.valves.inflow1)}, inflow2 {percent(plant.valves.inflow2)}, heater {percent(plant.valves.heater)}
      </dd>
      <dt>faults</dt>
      <dd data-testid="plant-faults" class={plant.faults.length ? 'error' : 'muted'}>
        {plant.faults.length ? plant.faults.join(', ') : 'none'}
      </dd>
      {!setpoints && (
        <>
          <dt>setpoints</dt>
          <dd class="muted">not in the last update</dd>
        </>
      )}
    </dl>
  );
}
