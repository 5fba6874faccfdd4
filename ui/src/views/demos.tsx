import { useMemo } from 'preact/hooks';
import { PipelineChart } from '../components/pipeline-chart';
import { useNow } from '../components/use-now';
import { ago, fixed } from '../format';
import { pipelineSeries, recentThroughput } from '../live/pipeline-series';
import { live } from '../live/store';
import { useObservable } from '../observable';
import { PlantSection } from './plant-section';

/** `pipeline` events come every 2 s while the demo's db VM runs: this long without one means it stopped. */
const STALE_MS = 10_000;

export function DemosView() {
  const pipeline = useObservable(live, (d) => d.pipeline);
  const now = useNow(1000);
  const series = useMemo(() => pipelineSeries(pipeline), [pipeline]);
  const last = pipeline[pipeline.length - 1];
  const running = last !== undefined && now - last.at < STALE_MS;

  return (
    <section class="view">
      <div class="toolbar">
        <h1>Demos</h1>
      </div>
      <div class="panel" data-testid="pipeline">
        <h2>
          Image pipeline{' '}
          <span class={`small ${running ? 'ok-text' : 'muted'}`} data-testid="pipeline-status">
            {running ? 'running' : 'not running'}
            {!running && last ? ` (last update ${ago(last.at, now)})` : ''}
          </span>
        </h2>
        {!last ? (
          <p class="muted">
            Not running: no pipeline update has come. Start the image demo (<code>uigniter demo</code>) and its numbers show here.
          </p>
        ) : (
          <>
            <div class="stats">
              <Stat label="ready" value={last.stats.ready} testId="pipeline-ready" />
              <Stat label="leased" value={last.stats.leased} testId="pipeline-leased" />
              <Stat label="done" value={last.stats.done} testId="pipeline-done" />
              <Stat label="failed" value={last.stats.failed} testId="pipeline-failed" />
              <Stat label="total" value={last.stats.total} testId="pipeline-total" />
              <Stat label="done/s (10 s)" value={fixed(recentThroughput(pipeline))} testId="pipeline-throughput" />
            </div>
            <PipelineChart series={series} />
            <h3>Per worker</h3>
            <table class="list compact" data-testid="pipeline-workers">
              <thead>
                <tr>
                  <th>Worker</th>
                  <th class="num">Done</th>
                </tr>
              </thead>
              <tbody>
                {Object.entries(last.stats.byWorker)
                  .sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }))
                  .map(([worker, n]) => (
                    <tr key={worker}>
                      <td>{worker}</td>
                      <td class="num">{n}</td>
                    </tr>
                  ))}
              </tbody>
            </table>
          </>
        )}
      </div>
      <PlantSection now={now} />
    </section>
  );
}

function Stat({ label, value, testId }: { label: string; value: number | string; testId: string }) {
  return (
    <div class="stat">
      <div class="stat-value" data-testid={testId}>
        {value}
      </div>
      <div class="stat-label">{label}</div>
    </div>
  );
}
