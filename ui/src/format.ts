/** Display helpers: sizes, durations, times. */

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function mib(n: number): string {
  return n >= 1024 && n % 1024 === 0 ? `${n / 1024} GiB` : `${n} MiB`;
}

/** 850 ms, 1.25 s */
export function ms(n: number | null): string {
  if (n === null) return '–';
  return n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(2)} s`;
}

/** 45s, 12m 03s, 3h 04m, 2d 05h */
export function duration(totalMs: number): string {
  const s = Math.max(0, Math.floor(totalMs / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${String(h % 24).padStart(2, '0')}h`;
}

export function time(at: string | number): string {
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? String(at) : d.toLocaleTimeString(undefined, { hour12: false });
}

export function dateTime(at: string | number): string {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return String(at);
  return `${d.toLocaleDateString(undefined, { year: 'numeric', month: '2-digit', day: '2-digit' })} ${d.toLocaleTimeString(undefined, { hour12: false })}`;
}

export function ago(at: string | number, now: number): string {
  const t = typeof at === 'number' ? at : Date.parse(at);
  return Number.isNaN(t) ? '–' : `${duration(now - t)} ago`;
}

export function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

export function fixed(n: number | null | undefined, digits = 1): string {
  return n === null || n === undefined || Number.isNaN(n) ? '–' : n.toFixed(digits);
}
