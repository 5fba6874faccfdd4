import { HttpError, invalidField, missingField } from './http-error.js';

/** Object ids accepted by storage (and so the keys tasks refer to). */
export const OBJECT_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

export function requireString(
  body: Record<string, unknown>,
  field: string,
  pattern?: RegExp,
  maxLength = 1024,
): string {
  const value = body[field];
  if (value === undefined || value === null) throw missingField(field);
  if (typeof value !== 'string') throw invalidField(field, `field "${field}" must be a string`);
  if (value.length === 0 || value.length > maxLength) {
    throw invalidField(field, `field "${field}" must be 1..${maxLength} characters`);
  }
  if (pattern && !pattern.test(value)) {
    throw invalidField(field, `field "${field}" must match ${pattern.source}`);
  }
  return value;
}

/** Parses a positive integer path or query parameter. */
export function parsePositiveInt(raw: string, field: string): number {
  if (!/^[0-9]{1,15}$/.test(raw) || Number(raw) < 1) {
    throw new HttpError(400, 'invalid_field', `${field} must be a positive integer, got "${raw}"`, field);
  }
  return Number(raw);
}
