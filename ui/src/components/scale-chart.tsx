import { useMemo, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { ScalePoint } from '../api/types';
import { UPlotChart } from './uplot-chart';

const COLORS = { metric: '#0969da', desired: '#8250df', ready: '#1a7f37', decision: '#bc4c00' };

/** Vertical dashed marks at the autoscaler's decisions, labelled from→to, drawn over the plot. */
function decisionMarks(getPoints: () => readonly ScalePoint[]): uPlot.Plugin {
  return {
    hooks: {
      draw: (u: uPlot) => {
        const { ctx } = u;
        const { left, top, width, height } = u.bbox;
        const px = window.devicePixelRatio || 1;
        ctx.save();
        ctx.strokeStyle = COLORS.decision;
        ctx.fillStyle = COLORS.decision;
        ctx.lineWidth = px;
        ctx.setLineDash([4 * px, 3 * px]);
        ctx.font = `${10 * px}px system-ui, sans-serif`;
        for (const p of getPoints()) {
          if (!p.decision) continue;
          const x = Math.round(u.valToPos(p.t / 1000, 'x', true));
          if (x < left || x > left + width) continue;
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.fillText(`${p.decision.from}→${p.decision.to}`, x + 3 * px, top + 11 * px);
        }
        ctx.restore();
      },
    },
  };
}

function chartOptions(getPoints: () => readonly ScalePoint[]): Omit<uPlot.Options, 'width' | 'height'> {
  const stepped = uPlot.paths.stepped?.({ align: 1 });
  return {
    plugins: [decisionMarks(getPoints)],
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, replicas: { range: (_u, _min, max) => [0, Math.max(2, max + 1)] } },
    series: [
      {},
      { label: 'metric', scale: 'metric', stroke: COLORS.metric, width: 1.5, spanGaps: false },
      { label: 'desired', scale: 'replicas', stroke: COLORS.desired, width: 2, ...(stepped ? { paths: stepped } : {}) },
      { label: 'ready', scale: 'replicas', stroke: COLORS.ready, width: 2, dash: [6, 3], ...(stepped ? { paths: stepped } : {}) },
    ],
    axes: [
      {},
      { scale: 'metric', label: 'metric', size: 50 },
      { scale: 'replicas', label: 'replicas', side: 1, grid: { show: false }, size: 40 },
    ],
  };
}

/** The autoscaler's ticks: metric, desired and ready replicas, decisions marked. */
export function ScaleChart({ points }: { points: readonly ScalePoint[] }) {
  const current = useRef(points);
  current.current = points;
  const options = useMemo(() => chartOptions(() => current.current), []);
  const data = useMemo<uPlot.AlignedData>(
    () => [points.map((p) => p.t / 1000), points.map((p) => p.metric), points.map((p) => p.desired), points.map((p) => p.ready)],
    [points],
  );
  return <UPlotChart options={options} data={data} height={260} testId="scale-chart" />;
}
