import { invalid } from '../errors.js';

/**
 * What a service's autoscaler measures: requests in flight (held or being served), requests
 * per second (a rate derived from a request counter), or a number another service publishes
 * as JSON (e.g. a database's pending-task count).
 */
export const AUTOSCALE_METRICS = ['inflight', 'rps', 'http-json'] as const;
export type AutoscaleMetric = (typeof AUTOSCALE_METRICS)[number];

export interface AutoscaleSettings {
  metric: AutoscaleMetric;
  /** How much of the metric one replica should carry (e.g. 10 in flight per VM). */
  target: number;
  /** http-json only: where the number is read, an http(s) URL. */
  url?: string;
  /** http-json only: dotted path to the number in the JSON (`queue.pending`); absent, the body is the number. */
  field?: string;
  /** With min 0: no demand for this long, and the service goes to zero. */
  scaleToZeroAfterMs: number;
  /** The long average that sizes the service, and how long a lower count must hold before scaling down. */
  stableWindowMs: number;
  /** The short average that detects a burst. */
  panicWindowMs: number;
  /** No scale-down within this long of the last change (0: none). Scale-up never waits. */
  cooldownMs: number;
}

export const AUTOSCALE_DEFAULTS = {
  scaleToZeroAfterMs: 30_000,
  stableWindowMs: 60_000,
  panicWindowMs: 6_000,
  cooldownMs: 2_000,
} as const;

/** The longest any duration may be: the metric window keeps samples for the longest window. */
export const MAX_AUTOSCALE_DURATION_MS = 3_600_000;

const KNOWN_FIELDS = ['metric', 'target', 'url', 'field', 'scaleToZeroAfterMs', 'stableWindowMs', 'panicWindowMs', 'cooldownMs'] as const;
const FIELD_PATH = /^[^.\s]+(\.[^.\s]+)*$/;

/**
 * Validates a user's `autoscale` object and fills in defaults. Throws `invalid` naming the
 * exact field (`autoscale.target`, ...) so the API can point at it. `at` is the object's own
 * field path, for when it sits deeper in a request (`service.autoscale`).
 */
export function checkAutoscale(input: unknown, at = 'autoscale'): AutoscaleSettings {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw invalid(at, `${at} must be an object`);
  const obj = input as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!(KNOWN_FIELDS as readonly string[]).includes(key)) {
      throw invalid(`${at}.${key}`, `unknown field ${at}.${key} (known: ${KNOWN_FIELDS.join(', ')})`);
    }
  }

  const metric = obj.metric;
  if (typeof metric !== 'string' || !(AUTOSCALE_METRICS as readonly string[]).includes(metric)) {
    throw invalid(`${at}.metric`, `${at}.metric must be one of ${AUTOSCALE_METRICS.join(', ')}, got ${JSON.stringify(metric)}`);
  }
  const target = obj.target;
  if (typeof target !== 'number' || !Number.isFinite(target) || target <= 0) {
    throw invalid(`${at}.target`, `${at}.target must be a number above 0, got ${JSON.stringify(target)}`);
  }

  const settings: AutoscaleSettings = {
    metric: metric as AutoscaleMetric,
    target,
    scaleToZeroAfterMs: duration(obj, at, 'scaleToZeroAfterMs', 1),
    stableWindowMs: duration(obj, at, 'stableWindowMs', 1),
    panicWindowMs: duration(obj, at, 'panicWindowMs', 1),
    cooldownMs: duration(obj, at, 'cooldownMs', 0),
  };
  if (settings.panicWindowMs > settings.stableWindowMs) {
    throw invalid(
      `${at}.panicWindowMs`,
      `${at}.panicWindowMs (${settings.panicWindowMs}) must not be longer than ${at}.stableWindowMs (${settings.stableWindowMs})`,
    );
  }

  if (settings.metric === 'http-json') {
    settings.url = httpUrl(obj.url, `${at}.url`);
    if (obj.field !== undefined) {
      if (typeof obj.field !== 'string' || !FIELD_PATH.test(obj.field)) {
        throw invalid(`${at}.field`, `${at}.field must be a dotted path like queue.pending, got ${JSON.stringify(obj.field)}`);
      }
      settings.field = obj.field;
    }
  } else {
    // Accepting them would let a user believe the service scales on that URL.
    for (const key of ['url', 'field'] as const) {
      if (obj[key] !== undefined) throw invalid(`${at}.${key}`, `${at}.${key} is only used with metric http-json, not ${settings.metric}`);
    }
  }
  return settings;
}

function duration(obj: Record<string, unknown>, at: string, key: keyof typeof AUTOSCALE_DEFAULTS, lowest: 0 | 1): number {
  const v = obj[key];
  if (v === undefined) return AUTOSCALE_DEFAULTS[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lowest || v > MAX_AUTOSCALE_DURATION_MS) {
    const what = lowest === 0 ? 'a whole number of ms from 0' : 'a positive whole number of ms';
    throw invalid(`${at}.${key}`, `${at}.${key} must be ${what} up to ${MAX_AUTOSCALE_DURATION_MS}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function httpUrl(v: unknown, field: string): string {
  if (v === undefined) throw invalid(field, `${field} is required with metric http-json: where to read the number`);
  if (typeof v !== 'string') throw invalid(field, `${field} must be a string, got ${JSON.stringify(v)}`);
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw invalid(field, `${field} is not a URL: ${JSON.stringify(v)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(field, `${field} must be http or https, got ${url.protocol.replace(/:$/, '')}`);
  return v;
}
