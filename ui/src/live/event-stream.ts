import { authHeaders } from '../api/session';
import { SseParser, type SseMessage } from './sse-parser';

export interface StreamCallbacks {
  /** The daemon answered 200: the token (if any) is good. */
  onOpen(): void;
  onMessage(message: SseMessage): void;
  /** The stream dropped or could not open; the next try is in retryMs. */
  onDown(reason: string, retryMs: number): void;
  /** 401: no retry, the token must be asked again. */
  onUnauthorized(): void;
}

/** 0.5 s, 1 s, 2 s, 4 s, then 5 s between tries. */
export function backoffMs(attempt: number): number {
  return Math.min(500 * 2 ** attempt, 5000);
}

type Ending = { unauthorized: true } | { unauthorized: false; reason: string };

/** The daemon sends `: ping` every 15 s: this long with no byte at all means a dead connection. */
const SILENCE_MS = 45_000;

/**
 * Follows GET /events for as long as the page wants it, reconnecting by itself. Read with
 * fetch() and a stream reader, not EventSource, which cannot send the Authorization header.
 * Returns the function that closes it for good.
 */
export function followEvents(cb: StreamCallbacks): () => void {
  let closed = false;
  let current: AbortController | null = null;
  let wake: (() => void) | null = null;

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  /** One connection, read until it ends; resolves with why it ended. */
  async function readOnce(parser: SseParser, onFirstMessage: () => void): Promise<Ending> {
    const controller = new AbortController();
    current = controller;
    let silence = setTimeout(() => controller.abort(), SILENCE_MS);
    try {
      const res = await fetch('/events', { headers: { accept: 'text/event-stream', ...authHeaders() }, signal: controller.signal, cache: 'no-store' });
      if (res.status === 401) return { unauthorized: true };
      if (!res.ok || !res.body) return { unauthorized: false, reason: `HTTP ${res.status}` };
      cb.onOpen();
      const reader = res.body.getReader();
      const decoder = new TextDecoder(); // stream: true keeps a UTF-8 sequence split across chunks
      let first = true;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return { unauthorized: false, reason: 'the daemon closed the stream' };
        clearTimeout(silence);
        silence = setTimeout(() => controller.abort(), SILENCE_MS);
        for (const message of parser.push(decoder.decode(value, { stream: true }))) {
          if (first) onFirstMessage();
          first = false;
          cb.onMessage(message);
        }
      }
    } catch (err) {
      if (controller.signal.aborted && !closed) return { unauthorized: false, reason: `no data for ${SILENCE_MS / 1000} s` };
      return { unauthorized: false, reason: err instanceof Error ? err.message : String(err) };
    } finally {
      clearTimeout(silence);
      current = null;
    }
  }

  void (async () => {
    let attempt = 0;
    const parser = new SseParser();
    while (!closed) {
      parser.reset();
      const ending = await readOnce(parser, () => (attempt = 0));
      if (closed) return;
      if (ending.unauthorized) {
        cb.onUnauthorized();
        return;
      }
      const retry = backoffMs(attempt++);
      cb.onDown(ending.reason, retry);
      await sleep(retry);
    }
  })();

  return () => {
    closed = true;
    current?.abort();
    wake?.();
  };
}
