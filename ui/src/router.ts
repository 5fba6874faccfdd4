import { useEffect, useState } from 'preact/hooks';

/** Hash routes: #/, #/vm/<id>, #/services, #/services/<name>, #/inventory, #/demos. */
export type Route =
  | { view: 'fleet' }
  | { view: 'vm'; id: string }
  | { view: 'services' }
  | { view: 'service'; name: string }
  | { view: 'inventory' }
  | { view: 'demos' }
  | { view: 'unknown'; path: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/';
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const [first, second] = parts;
  if (parts.length === 0) return { view: 'fleet' };
  if (first === 'vm' && second && parts.length === 2) return { view: 'vm', id: second };
  if (first === 'services' && parts.length === 1) return { view: 'services' };
  if (first === 'services' && second && parts.length === 2) return { view: 'service', name: second };
  if (first === 'inventory' && parts.length === 1) return { view: 'inventory' };
  if (first === 'demos' && parts.length === 1) return { view: 'demos' };
  return { view: 'unknown', path };
}

export const href = {
  fleet: () => '#/',
  vm: (id: string) => `#/vm/${encodeURIComponent(id)}`,
  services: () => '#/services',
  service: (name: string) => `#/services/${encodeURIComponent(name)}`,
  inventory: () => '#/inventory',
  demos: () => '#/demos',
};

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = (): void => setRoute(parseRoute(location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
