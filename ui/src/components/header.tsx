import { daemonVersion } from '../api/session';
import { connection, live } from '../live/store';
import { useObservable } from '../observable';
import { href, type Route } from '../router';

const LINKS = [
  { id: 'fleet', label: 'Fleet', to: href.fleet(), views: ['fleet', 'vm'] },
  { id: 'services', label: 'Services', to: href.services(), views: ['services', 'service'] },
  { id: 'inventory', label: 'Inventory', to: href.inventory(), views: ['inventory'] },
  { id: 'demos', label: 'Demos', to: href.demos(), views: ['demos'] },
];

export function Header({ route }: { route: Route }) {
  const conn = useObservable(connection);
  const streamVersion = useObservable(live, (d) => d.version);
  const version = useObservable(daemonVersion) ?? streamVersion;
  const isLive = conn.status === 'live';
  return (
    <header class="top">
      <a class="brand" href={href.fleet()}>
        uigniter
      </a>
      <nav>
        {LINKS.map((l) => (
          <a key={l.id} href={l.to} data-testid={`nav-${l.id}`} class={l.views.includes(route.view) ? 'active' : ''}>
            {l.label}
          </a>
        ))}
      </nav>
      <span class="spacer" />
      {version && <span class="version">v{version}</span>}
      <span class={`conn ${isLive ? 'conn-live' : 'conn-down'}`} data-testid="conn" title={conn.status === 'disconnected' ? conn.reason : conn.status}>
        {isLive ? 'live' : 'disconnected'}
      </span>
    </header>
  );
}

/** Shown while the stream is down (not during the very first connection). */
export function DisconnectedBanner() {
  const conn = useObservable(connection);
  if (conn.status !== 'disconnected') return null;
  return (
    <div class="banner" data-testid="disconnected" role="status">
      Disconnected from the daemon ({conn.reason}). Reconnecting in {(conn.retryMs / 1000).toFixed(1)} s; the data below may be stale.
    </div>
  );
}
