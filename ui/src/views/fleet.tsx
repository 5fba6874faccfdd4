import { useMemo, useState } from 'preact/hooks';
import { StateBadge, stateTone } from '../components/state-badge';
import { useNow } from '../components/use-now';
import { VirtualTable } from '../components/virtual-table';
import { live } from '../live/store';
import { useObservable } from '../observable';
import { href } from '../router';
import { compareRows, FLEET_COLUMNS, FLEET_GRID, matchesFilter, type FleetRow } from './fleet-columns';

const ROW_HEIGHT = 28;

export function FleetView() {
  const data = useObservable(live);
  const now = useNow(1000);
  const [filter, setFilter] = useState('');
  const [sort, setSort] = useState<{ key: string; dir: 1 | -1 }>({ key: 'name', dir: 1 });

  const all = useMemo(() => Object.values(data.vms), [data.vms]);
  const rows = useMemo(() => {
    const column = FLEET_COLUMNS.find((c) => c.key === sort.key) ?? FLEET_COLUMNS[1]!;
    const picked: FleetRow[] = all.filter((vm) => matchesFilter(vm, filter.trim())).map((vm) => ({ vm, usage: data.usage[vm.id] }));
    // uptime sorts against the clock: re-sorting each second would make rows jump, so it uses the time of the last data change
    return picked.sort(compareRows(column, sort.dir, Date.now()));
  }, [all, data.usage, filter, sort]);

  const counts = useMemo(() => {
    const byState = new Map<string, number>();
    for (const vm of all) byState.set(vm.state, (byState.get(vm.state) ?? 0) + 1);
    return [...byState.entries()].sort();
  }, [all]);

  const toggleSort = (key: string): void => setSort((s) => (s.key === key ? { key, dir: s.dir === 1 ? -1 : 1 } : { key, dir: 1 }));

  const header = (
    <div class="vhead" style={{ gridTemplateColumns: FLEET_GRID }} role="row">
      {FLEET_COLUMNS.map((c) => (
        <div key={c.key} role="columnheader" aria-sort={sort.key === c.key ? (sort.dir === 1 ? 'ascending' : 'descending') : 'none'}>
          <button
            type="button"
            class={`th ${c.numeric ? 'num' : ''} ${sort.key === c.key ? 'sorted' : ''}`}
            data-testid={`sort-${c.key}`}
            onClick={() => toggleSort(c.key)}
          >
            {c.label}
            {sort.key === c.key ? (sort.dir === 1 ? ' ▲' : ' ▼') : ''}
          </button>
        </div>
      ))}
    </div>
  );

  return (
    <section class="view view-fill">
      <div class="toolbar">
        <h1>Fleet</h1>
        <input
          type="search"
          class="filter"
          placeholder="Filter by name, image, IP or state"
          data-testid="fleet-filter"
          value={filter}
          onInput={(e) => setFilter(e.currentTarget.value)}
        />
        <span class="muted" data-testid="fleet-count">
          {rows.length === all.length ? `${all.length} VMs` : `${rows.length} of ${all.length} VMs`}
        </span>
        <span class="state-counts">
          {counts.map(([state, n]) => (
            <span key={state} class={`count state-${stateTone(state)}`}>
              {state} {n}
            </span>
          ))}
        </span>
      </div>
      <VirtualTable
        class="fleet-table"
        items={rows}
        rowHeight={ROW_HEIGHT}
        header={header}
        empty={<p class="muted pad">{all.length === 0 ? (
              <>
                No VMs yet. Start one with <code>uigniter run IMAGE</code>.
              </>
            ) : (
              'No VM matches the filter.'
            )}</p>}
        renderRow={(row) => (
          <a
            key={row.vm.id}
            class="vrow"
            href={href.vm(row.vm.id)}
            data-testid={`vm-row-${row.vm.name}`}
            style={{ gridTemplateColumns: FLEET_GRID, height: `${ROW_HEIGHT}px` }}
          >
            {FLEET_COLUMNS.map((c) =>
              c.key === 'state' ? (
                <span key={c.key} class="td">
                  <StateBadge state={row.vm.state} testId={`vm-state-${row.vm.name}`} />
                </span>
              ) : (
                <span key={c.key} class={`td ${c.numeric ? 'num' : ''}`} title={c.key === 'name' || c.key === 'image' ? c.text(row, now) : undefined}>
                  {c.text(row, now)}
                </span>
              ),
            )}
          </a>
        )}
      />
    </section>
  );
}
