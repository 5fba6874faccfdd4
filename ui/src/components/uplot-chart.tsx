import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

interface Props {
  /** Built once per chart (memoize it): a new object rebuilds the chart. */
  options: Omit<uPlot.Options, 'width' | 'height'>;
  data: uPlot.AlignedData;
  height: number;
  testId?: string;
}

/** A uPlot chart that follows its container's width and takes new data without being rebuilt. */
export function UPlotChart({ options, data, height, testId }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);
  const latest = useRef(data);
  latest.current = data;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    // lines only: uPlot's point markers crowd a chart that gains a point a second
    const series = options.series.map((s, i) => (i === 0 || s.points ? s : { ...s, points: { show: false } }));
    const u = new uPlot({ ...options, series, width: Math.max(200, el.clientWidth), height }, latest.current, el);
    chart.current = u;
    const observer = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      u.destroy();
      chart.current = null;
    };
  }, [options, height]);

  useEffect(() => {
    chart.current?.setData(data);
  }, [data]);

  return <div ref={box} class="chart" data-testid={testId} />;
}
