import { invalid } from '../core/errors.js';

export interface ImageRef {
  name: string;
  tag: string;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/**
 * Parses NAME[:TAG]. Names become file names under the state directory, so anything
 * that could step out of it ('/', '..') is refused with a message that says so.
 */
export function parseImageRef(ref: string, field = 'image'): ImageRef {
  if (typeof ref !== 'string' || ref.length === 0) throw invalid(field, 'image name is empty');
  if (ref.includes('/')) throw invalid(field, `image name '${ref}' must not contain '/'`);
  if (ref.includes('..')) throw invalid(field, `image name '${ref}' must not contain '..'`);
  const colon = ref.indexOf(':');
  const name = colon < 0 ? ref : ref.slice(0, colon);
  const tag = colon < 0 ? 'latest' : ref.slice(colon + 1);
  if (!NAME.test(name)) {
    throw invalid(field, `image name '${name}' is invalid: use 1-63 of [a-z0-9._-], starting with a letter or digit`);
  }
  if (!TAG.test(tag)) throw invalid(field, `image tag '${tag}' is invalid: use 1-128 of [A-Za-z0-9._-]`);
  return { name, tag };
}

export function formatImageRef(ref: ImageRef): string {
  return `${ref.name}:${ref.tag}`;
}
