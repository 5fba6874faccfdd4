import { tokenAccepted, tokenRefused } from '../api/session';
import { followEvents } from './event-stream';
import { applyMessage, connection } from './store';

/** Opens the page's one /events stream and feeds the store; returns its close function. */
export function connectLive(): () => void {
  return followEvents({
    onOpen: tokenAccepted,
    onMessage: applyMessage,
    onDown: (reason, retryMs) => connection.set({ status: 'disconnected', reason, retryMs }),
    onUnauthorized: tokenRefused,
  });
}
