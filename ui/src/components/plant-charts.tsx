import { useMemo } from 'preact/hooks';
import type uPlot from 'uplot';
import type { PlantSeries } from '../live/plant-series';
import { UPlotChart } from './uplot-chart';

const COLORS = { level1: '#0969da', level2: '#8250df', high: '#bf8700', highHigh: '#cf222e', temp: '#bc4c00' };
const SETPOINT_DASH = [6, 4];

type ChartOptions = Omit<uPlot.Options, 'width' | 'height'>;

/** From 0, with room above the highest line (the high-high limit is a series, so it is always in view). */
const fromZero: uPlot.Scale.Range = (_u, _min, max) => [0, Math.max(0.1, max * 1.08)];

const LEVEL_OPTIONS: ChartOptions = {
  cursor: { drag: { x: false, y: false } },
  scales: { x: { time: true }, m: { range: fromZero } },
  series: [
    {},
    { label: 'level1', scale: 'm', stroke: COLORS.level1, width: 2 },
    { label: 'level2', scale: 'm', stroke: COLORS.level2, width: 2 },
    { label: 'setpoint level1', scale: 'm', stroke: COLORS.level1, width: 1.5, dash: SETPOINT_DASH },
    { label: 'setpoint level2', scale: 'm', stroke: COLORS.level2, width: 1.5, dash: SETPOINT_DASH },
    { label: 'high', scale: 'm', stroke: COLORS.high, width: 1 },
    { label: 'high-high', scale: 'm', stroke: COLORS.highHigh, width: 1 },
  ],
  axes: [{}, { scale: 'm', label: 'level (m)', size: 50 }],
};

const TEMP_OPTIONS: ChartOptions = {
  cursor: { drag: { x: false, y: false } },
  scales: { x: { time: true } },
  series: [
    {},
    { label: 'temperature', scale: 'degC', stroke: COLORS.temp, width: 2 },
    { label: 'setpoint', scale: 'degC', stroke: COLORS.temp, width: 1.5, dash: SETPOINT_DASH },
  ],
  axes: [{}, { scale: 'degC', label: 'temperature (°C)', size: 50 }],
};

/** Tank levels with their setpoints (dashed) and the high / high-high alarm limits. */
export function PlantLevelsChart({ series }: { series: PlantSeries }) {
  const data = useMemo<uPlot.AlignedData>(
    () => [series.t, series.level1, series.level2, series.level1Setpoint, series.level2Setpoint, series.levelHigh, series.levelHighHigh],
    [series],
  );
  return <UPlotChart options={LEVEL_OPTIONS} data={data} height={240} testId="plant-levels-chart" />;
}

/** Temperature with its setpoint (dashed). */
export function PlantTempChart({ series }: { series: PlantSeries }) {
  const data = useMemo<uPlot.AlignedData>(() => [series.t, series.temp, series.tempSetpoint], [series]);
  return <UPlotChart options={TEMP_OPTIONS} data={data} height={240} testId="plant-temp-chart" />;
}
