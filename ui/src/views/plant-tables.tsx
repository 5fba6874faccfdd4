import type { PlantStats } from '../api/types';
import { time } from '../format';
import type { Failover, PlantController } from '../live/plant-history';
import { activeController } from '../live/plant-history';

/** The controllers of the last update, the one in charge highlighted. */
export function PlantControllers({ controllers }: { controllers: readonly PlantController[] }) {
  const active = activeController(controllers);
  return (
    <div>
      <h3>Controllers</h3>
      <table class="list compact" data-testid="plant-controllers">
        <thead>
          <tr>
            <th>Id</th>
            <th>Role</th>
            <th class="num">Epoch</th>
            <th>Reachable</th>
          </tr>
        </thead>
        <tbody>
          {controllers.length === 0 ? (
            <tr>
              <td colSpan={4} class="muted">
                none in the last update
              </td>
            </tr>
          ) : (
            controllers.map((c) => (
              <tr key={c.id} class={c === active ? 'row-active' : ''} data-active={c === active ? 'true' : undefined}>
                <td>{c.id}</td>
                <td>{c === active ? <b>{c.role}</b> : c.role}</td>
                <td class="num">{c.epoch}</td>
                <td class={c.reachable ? '' : 'error'}>{c.reachable ? 'yes' : 'no'}</td>
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}

/** Changes of the active controller (id or epoch) between the updates this page received. */
export function PlantFailovers({ failovers }: { failovers: readonly Failover[] }) {
  return (
    <div>
      <h3>Fail-overs seen</h3>
      {failovers.length === 0 ? (
        <p class="muted" data-testid="plant-failovers">
          none since this page opened
        </p>
      ) : (
        <ul class="events" data-testid="plant-failovers">
          {[...failovers].reverse().map((f) => (
            <li key={`${f.at}-${f.to.id}-${f.to.epoch}`}>
              <span class="mono">{time(f.at)}</span> {f.from.id} (epoch {f.from.epoch}) → <b>{f.to.id}</b> (epoch {f.to.epoch})
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** Pending alarms and the recent ones, with how long handling took. */
export function PlantAlarms({ alarms }: { alarms: PlantStats['alarms'] }) {
  return (
    <div data-testid="plant-alarms">
      <h3>
        Alarms{' '}
        {alarms && (
          <span class={`small ${alarms.pending > 0 ? 'error' : 'muted'}`}>
            <span data-testid="plant-alarms-pending">{alarms.pending}</span> pending
          </span>
        )}
      </h3>
      {!alarms ? (
        <p class="muted">not known in the last update</p>
      ) : alarms.recent.length === 0 ? (
        <p class="muted">no recent alarms</p>
      ) : (
        <table class="list compact">
          <thead>
            <tr>
              <th>Raised</th>
              <th>Kind</th>
              <th>Tag</th>
              <th>Handled</th>
            </tr>
          </thead>
          <tbody>
            {alarms.recent.map((a) => (
              <tr key={a.id}>
                <td class="mono">{a.raisedAt === null ? '–' : time(a.raisedAt)}</td>
                <td>{a.kind ?? '–'}</td>
                <td>{a.tag ?? '–'}</td>
                <td class={a.handledMs === null && a.handledAt === null ? 'error' : ''}>{handledText(a)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

type RecentAlarm = NonNullable<PlantStats['alarms']>['recent'][number];

function handledText(a: RecentAlarm): string {
  if (a.handledMs !== null) return `after ${Math.round(a.handledMs)} ms`;
  return a.handledAt === null ? 'not yet' : 'yes';
}
