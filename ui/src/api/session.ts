import { observable } from '../observable';
import type { Health } from './types';

/**
 * The bearer token and where the page stands with it. The token lives in sessionStorage (gone
 * with the tab). No data is shown before a call with it succeeded: 'verifying' holds the page
 * until the /events stream answers 200; a 401 anywhere brings the form back.
 */
export type SessionState =
  | { phase: 'checking' }
  | { phase: 'need-token'; message: string | null }
  | { phase: 'verifying' }
  | { phase: 'ready' };

const TOKEN_KEY = 'uigniter.token';

export const session = observable<SessionState>({ phase: 'checking' });
export const daemonVersion = observable<string | null>(null);

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage disabled: the page works without a token
  }
}

export function authHeaders(): Record<string, string> {
  const token = getToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

export function submitToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
  session.set({ phase: 'verifying' });
}

/** A call came back 401: forget the token and ask again. */
export function tokenRefused(): void {
  const had = getToken() !== null;
  sessionStorage.removeItem(TOKEN_KEY);
  session.set({ phase: 'need-token', message: had ? 'The daemon refused this token.' : null });
}

/** The stream answered 200 with the current token. */
export function tokenAccepted(): void {
  if (session.get().phase !== 'ready') session.set({ phase: 'ready' });
}

/** First step: /healthz (no token needed) says whether the daemon wants one. */
export async function startSession(): Promise<void> {
  let health: Health | null = null;
  try {
    const res = await fetch('/healthz', { headers: { accept: 'application/json' } });
    if (res.ok) health = (await res.json()) as Health;
  } catch {
    // daemon unreachable: go on, the stream retries and shows it as disconnected
  }
  if (health) daemonVersion.set(health.version);
  if (health?.auth && !getToken()) session.set({ phase: 'need-token', message: null });
  else session.set({ phase: 'verifying' });
}
