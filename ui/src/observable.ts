import { useEffect, useRef, useState } from 'preact/hooks';

/** A value that components can follow: the small piece the session and the live store share. */
export interface Observable<T> {
  get(): T;
  set(next: T): void;
  subscribe(listener: () => void): () => void;
}

/**
 * batchMs > 0 coalesces bursts of set() into one notification (the stream can bring hundreds
 * of VM changes in one chunk; the page needs to render once for them, not once each).
 */
export function observable<T>(initial: T, batchMs = 0): Observable<T> {
  let value = initial;
  let pending: ReturnType<typeof setTimeout> | null = null;
  const listeners = new Set<() => void>();
  const notify = (): void => {
    pending = null;
    for (const l of [...listeners]) l();
  };
  return {
    get: () => value,
    set(next) {
      if (next === value) return;
      value = next;
      if (batchMs <= 0) notify();
      else pending ??= setTimeout(notify, batchMs);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/**
 * The observable's value, or the part `select` picks from it; the component renders again only
 * when that changes (compared with Object.is), so a view that needs one field is left alone by
 * the rest of the stream.
 */
export function useObservable<T>(source: Observable<T>): T;
export function useObservable<T, S>(source: Observable<T>, select: (value: T) => S): S;
export function useObservable<T, S>(source: Observable<T>, select?: (value: T) => S): T | S {
  const pick = useRef(select);
  pick.current = select;
  const read = (): T | S => (pick.current ? pick.current(source.get()) : source.get());
  const [, setValue] = useState(read); // holds the last pick: an equal one renders nothing
  useEffect(() => {
    const sync = (): void => {
      const next = read();
      setValue(() => next);
    };
    sync(); // it may have changed between render and subscribe
    return source.subscribe(sync);
  }, [source]);
  return read();
}
