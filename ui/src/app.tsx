import { useEffect } from 'preact/hooks';
import { session } from './api/session';
import { DisconnectedBanner, Header } from './components/header';
import { TokenForm } from './components/token-form';
import { connectLive } from './live/connect';
import { clearLiveData, live } from './live/store';
import { useObservable } from './observable';
import { useRoute, type Route } from './router';
import { DemosView } from './views/demos';
import { FleetView } from './views/fleet';
import { InventoryView } from './views/inventory';
import { ServiceDetailView } from './views/service-detail';
import { ServicesView } from './views/services';
import { VmDetailView } from './views/vm-detail';

function CurrentView({ route }: { route: Route }) {
  switch (route.view) {
    case 'fleet':
      return <FleetView />;
    case 'vm':
      return <VmDetailView id={route.id} />;
    case 'services':
      return <ServicesView />;
    case 'service':
      return <ServiceDetailView name={route.name} />;
    case 'inventory':
      return <InventoryView />;
    case 'demos':
      return <DemosView />;
    case 'unknown':
      return <p class="muted pad">No page at {route.path}.</p>;
  }
}

export function App() {
  const state = useObservable(session);
  const hasData = useObservable(live, (d) => d.generation > 0);
  const route = useRoute();
  const wantStream = state.phase === 'verifying' || state.phase === 'ready';

  useEffect(() => {
    if (!wantStream) return;
    const close = connectLive();
    return () => {
      close();
      clearLiveData(); // no data stays on screen without a good token
    };
  }, [wantStream]);

  if (state.phase === 'checking') return <p class="muted pad">Loading…</p>;
  if (state.phase === 'need-token') return <TokenForm message={state.message} />;
  return (
    <div class="shell">
      <Header route={route} />
      <DisconnectedBanner />
      <main class="main">
        {state.phase === 'ready' && hasData ? <CurrentView route={route} /> : <p class="muted pad">Connecting to the daemon…</p>}
      </main>
    </div>
  );
}
