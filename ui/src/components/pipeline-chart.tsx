import { useMemo } from 'preact/hooks';
import type uPlot from 'uplot';
import type { PipelineSeries } from '../live/pipeline-series';
import { UPlotChart } from './uplot-chart';

const OPTIONS: Omit<uPlot.Options, 'width' | 'height'> = {
  cursor: { drag: { x: false, y: false } },
  scales: { x: { time: true }, backlog: { range: (_u, _min, max) => [0, Math.max(1, max)] }, rate: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
  series: [
    {},
    { label: 'backlog (ready+leased)', scale: 'backlog', stroke: '#9a6700', fill: 'rgba(212,167,44,0.12)', width: 1.5 },
    { label: 'done/s', scale: 'rate', stroke: '#1a7f37', width: 2 },
  ],
  axes: [{}, { scale: 'backlog', label: 'tasks', size: 50 }, { scale: 'rate', label: 'done/s', side: 1, grid: { show: false }, size: 45 }],
};

export function PipelineChart({ series }: { series: PipelineSeries }) {
  const data = useMemo<uPlot.AlignedData>(() => [series.t, series.backlog, series.throughput], [series]);
  return <UPlotChart options={OPTIONS} data={data} height={240} testId="pipeline-chart" />;
}
