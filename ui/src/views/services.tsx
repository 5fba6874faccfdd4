import { StateBadge } from '../components/state-badge';
import { live } from '../live/store';
import { useObservable } from '../observable';
import { href } from '../router';

export function autoscaleText(autoscale: Record<string, unknown> | null): string {
  if (!autoscale) return 'off';
  const { metric, target } = autoscale;
  return `${String(metric)} → ${String(target)}`;
}

function countStates(vms: readonly { state: string }[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const vm of vms) counts.set(vm.state, (counts.get(vm.state) ?? 0) + 1);
  return [...counts.entries()].sort(([a], [b]) => a.localeCompare(b));
}

export function ServicesView() {
  const services = useObservable(live, (d) => d.services);
  return (
    <section class="view">
      <div class="toolbar">
        <h1>Services</h1>
        <span class="muted">{services.length === 1 ? '1 service' : `${services.length} services`}</span>
      </div>
      {services.length === 0 ? (
        <p class="muted">No services. Create one with POST /services.</p>
      ) : (
        <div class="panel scroll-x">
        <table class="list" data-testid="services-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Image</th>
              <th class="num">Desired</th>
              <th class="num">Ready</th>
              <th class="num">Running</th>
              <th>Replicas</th>
              <th>Autoscale</th>
              <th>Pool</th>
              <th>Gateway</th>
              <th>VMs</th>
            </tr>
          </thead>
          <tbody>
            {services.map((s) => (
              <tr key={s.name} data-testid={`service-row-${s.name}`}>
                <td>
                  <a href={href.service(s.name)}>{s.name}</a>
                </td>
                <td>{s.image}</td>
                <td class="num">{s.status.desired}</td>
                <td class="num">{s.status.ready}</td>
                <td class="num">{s.status.running}</td>
                <td>
                  {s.replicas.min}–{s.replicas.max}
                </td>
                <td>{autoscaleText(s.autoscale)}</td>
                <td>{s.pool ? `${s.pool.id} (${s.pool.size})` : '–'}</td>
                <td>{s.gateway ? <a href={s.gateway} target="_blank" rel="noreferrer">{s.gateway}</a> : '–'}</td>
                <td class="vm-dots" title={s.vms.map((vm) => `${vm.name} ${vm.state}`).join('\n')}>
                  {countStates(s.vms).map(([state, n]) => (
                    <StateBadge key={state} state={`${n} ${state}`} tone={state} />
                  ))}
                  {s.vms.length === 0 && <span class="muted">none</span>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        </div>
      )}
    </section>
  );
}
