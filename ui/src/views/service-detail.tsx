import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from '../api/client';
import type { ServiceView as Service } from '../api/types';
import { ScaleChart } from '../components/scale-chart';
import { StateBadge } from '../components/state-badge';
import { time } from '../format';
import { addServiceHistory, HISTORY_MS, live } from '../live/store';
import { useObservable } from '../observable';
import { href } from '../router';
import { autoscaleText } from './services';

const NO_POINTS: never[] = [];

export function ServiceDetailView({ name }: { name: string }) {
  const data = useObservable(live);
  const service = data.services.find((s) => s.name === name);
  const points = data.scalePoints[name] ?? NO_POINTS;
  const events = data.serviceEvents[name] ?? NO_POINTS;
  const [historyError, setHistoryError] = useState<string | null>(null);

  // history on opening (and after a reconnect: the stream may have missed some), then the stream
  useEffect(() => {
    let current = true;
    Promise.all([api.serviceMetrics(name, Date.now() - HISTORY_MS), api.serviceEvents(name)]).then(
      ([m, e]) => {
        if (!current) return;
        addServiceHistory(name, m.points, e.events);
        setHistoryError(null);
      },
      (err: unknown) => current && setHistoryError(err instanceof Error ? err.message : String(err)),
    );
    return () => {
      current = false;
    };
  }, [name, data.generation]);

  const decisions = useMemo(() => points.filter((p) => p.decision).length, [points]);

  if (!service) {
    return (
      <section class="view">
        <p class="muted">
          No service {name}. <a href={href.services()}>All services</a>
        </p>
      </section>
    );
  }

  return (
    <section class="view">
      <div class="toolbar">
        <a href={href.services()} class="crumb">
          Services
        </a>
        <span class="muted">/</span>
        <h1>{service.name}</h1>
        <span class="muted">{service.image}</span>
        <span class="pill">
          desired {service.status.desired} · ready {service.status.ready} · running {service.status.running}
          {service.status.paused > 0 ? ` · paused ${service.status.paused}` : ''}
        </span>
        {service.gateway && (
          <a href={service.gateway} target="_blank" rel="noreferrer">
            {service.gateway}
          </a>
        )}
      </div>
      {historyError && <p class="error">History: {historyError}</p>}
      <div class="panel">
        <h2>
          Scaling <span class="muted small">autoscale: {autoscaleText(service.autoscale)}</span>
          <span class="chart-counts">
            <span>
              points <b data-testid="point-count">{points.length}</b>
            </span>
            <span>
              decisions <b data-testid="decision-count">{decisions}</b>
            </span>
          </span>
        </h2>
        <ScaleChart points={points} />
      </div>
      <div class="grid-2">
        <div class="panel">
          <h2>Replicas</h2>
          <ReplicasForm service={service} />
          <table class="list compact">
            <thead>
              <tr>
                <th>VM</th>
                <th>State</th>
                <th>IP</th>
                <th>Origin</th>
              </tr>
            </thead>
            <tbody>
              {service.vms.map((vm) => (
                <tr key={vm.name}>
                  <td>
                    <a href={href.vm(vm.name)}>{vm.name}</a>
                  </td>
                  <td>
                    <StateBadge state={vm.state} />
                  </td>
                  <td>{vm.ip ?? '–'}</td>
                  <td>{vm.origin}</td>
                </tr>
              ))}
              {service.vms.length === 0 && (
                <tr>
                  <td colSpan={4} class="muted">
                    No VMs (scaled to zero).
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
        <div class="panel">
          <h2>Events</h2>
          <ul class="events scroll-y" data-testid="service-events">
            {[...events].reverse().map((e) => (
              <li key={e.id}>
                <span class="muted nowrap">{time(e.at)}</span> <span class="tag">{e.kind}</span> {e.message}
              </li>
            ))}
            {events.length === 0 && <li class="muted">No events yet.</li>}
          </ul>
        </div>
      </div>
    </section>
  );
}

function ReplicasForm({ service }: { service: Service }) {
  // what the user typed; null shows the daemon's values (and follows them)
  const [draft, setDraft] = useState<{ min: string; max: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ error: boolean; text: string } | null>(null);
  const min = draft?.min ?? String(service.replicas.min);
  const max = draft?.max ?? String(service.replicas.max);
  const edit = (field: 'min' | 'max', value: string): void => setDraft({ min, max, [field]: value });

  // once the stream shows what was saved, the draft is the same as the daemon's values: drop it
  useEffect(() => {
    if (draft && !busy && Number(draft.min) === service.replicas.min && Number(draft.max) === service.replicas.max) setDraft(null);
  }, [draft, busy, service.replicas.min, service.replicas.max]);

  const save = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setMessage(null);
    try {
      await api.setReplicas(service.name, Number(min), Number(max));
      setMessage({ error: false, text: `Saved: ${min}–${max}.` });
    } catch (err) {
      setMessage({ error: true, text: err instanceof Error ? err.message : String(err) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="inline-form" onSubmit={(e) => void save(e)}>
      {(['min', 'max'] as const).map((bound) => (
        <label key={bound}>
          {bound}
          <input
            type="number"
            min={0}
            step={1}
            data-testid={`replicas-${bound}`}
            value={bound === 'min' ? min : max}
            onInput={(e) => edit(bound, e.currentTarget.value)}
          />
        </label>
      ))}
      <button type="submit" class="primary" data-testid="replicas-save" disabled={busy || min === '' || max === ''}>
        {busy ? 'Saving…' : 'Save'}
      </button>
      {message && (
        <span class={message.error ? 'error' : 'muted'} data-testid="replicas-message">
          {message.text}
        </span>
      )}
    </form>
  );
}
