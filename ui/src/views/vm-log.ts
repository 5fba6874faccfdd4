import { useEffect, useState } from 'preact/hooks';
import { api } from '../api/client';

/** One console line the guest init wrote, apart from the app's output. */
export interface InitLine {
  kind: 'protocol' | 'init';
  text: string;
  /** the protocol line's JSON, when it parses */
  event: Record<string, unknown> | null;
}

export interface VmLog {
  app: string[];
  init: InitLine[];
  status: 'loading' | 'following' | 'ended' | 'error';
  error: string | null;
}

const PROTOCOL_PREFIX = '@uigniter ';
const INIT_PREFIX = 'uigniter-init: ';
const MAX_APP_LINES = 2000;
const MAX_INIT_LINES = 300;

/** Sorts console lines: `@uigniter {json}` protocol lines and `uigniter-init: ` messages apart from the app's own. */
export function splitLines(lines: readonly string[]): { app: string[]; init: InitLine[] } {
  const app: string[] = [];
  const init: InitLine[] = [];
  for (const raw of lines) {
    const line = raw.replace(/\r$/, '');
    const bare = line.trimStart();
    if (bare.startsWith(PROTOCOL_PREFIX)) {
      const text = bare.slice(PROTOCOL_PREFIX.length);
      let event: Record<string, unknown> | null = null;
      try {
        event = JSON.parse(text) as Record<string, unknown>;
      } catch {
        // shown as text
      }
      init.push({ kind: 'protocol', text, event });
    } else if (bare.startsWith(INIT_PREFIX)) {
      init.push({ kind: 'init', text: bare.slice(INIT_PREFIX.length), event: null });
    } else {
      app.push(line);
    }
  }
  return { app, init };
}

/**
 * Follows GET /vm/<id>/logs?follow=1&tail=200 (text, streamed until the VM stops). A new
 * `session` value (a new boot, say) starts over with a fresh tail.
 */
export function useVmLog(id: string, session: string): VmLog {
  const [log, setLog] = useState<VmLog>({ app: [], init: [], status: 'loading', error: null });

  useEffect(() => {
    const controller = new AbortController();
    setLog({ app: [], init: [], status: 'loading', error: null });
    void (async () => {
      try {
        const res = await api.vmLogs(id, controller.signal);
        if (!res.body) throw new Error('no log stream');
        setLog((l) => ({ ...l, status: 'following' }));
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let partial = '';
        for (;;) {
          const { done, value } = await reader.read();
          const text = partial + (done ? decoder.decode() : decoder.decode(value, { stream: true }));
          const lines = text.split('\n');
          partial = done ? '' : (lines.pop() ?? '');
          const added = splitLines(done && lines[lines.length - 1] === '' ? lines.slice(0, -1) : lines);
          if (added.app.length || added.init.length) {
            setLog((l) => ({
              ...l,
              app: [...l.app, ...added.app].slice(-MAX_APP_LINES),
              init: [...l.init, ...added.init].slice(-MAX_INIT_LINES),
            }));
          }
          if (done) break;
        }
        setLog((l) => ({ ...l, status: 'ended' }));
      } catch (err) {
        if (controller.signal.aborted) return;
        setLog((l) => ({ ...l, status: 'error', error: err instanceof Error ? err.message : String(err) }));
      }
    })();
    return () => controller.abort();
  }, [id, session]);

  return log;
}
