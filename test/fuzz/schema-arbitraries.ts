import fc from 'fast-check';

/**
 * fast-check arbitraries made from the JSON schemas of the daemon's /openapi.json: values a
 * schema accepts, and values it refuses for sure (a wrong type, a missing required field, an
 * unknown field of a closed object, a number or length out of bounds). Domain knowledge
 * (which strings name real resources) comes in through `override`, keyed by field name.
 */

/** The subset of JSON Schema (OpenAPI 3.0 flavour) that @fastify/swagger writes for our routes. */
export interface Schema {
  type?: 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'object' | 'null';
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  anyOf?: Schema[];
  enum?: unknown[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  maxItems?: number;
  nullable?: boolean;
  $ref?: string;
}

/** Per field name: an arbitrary to use instead of the schema's own for valid values. */
export type Overrides = Record<string, fc.Arbitrary<unknown> | undefined>;

export interface Gen {
  valid(s: Schema, field?: string): fc.Arbitrary<unknown>;
  /** A value the schema refuses, whatever else the request holds. */
  invalid(s: Schema, field?: string): fc.Arbitrary<unknown>;
}

const typeOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v);

/** One value of each JSON type: a wrong-type value is one of these whose type the schema does not allow. */
const SAMPLES: unknown[] = ['x', '', '5', 'true', 7, 0, -1, 1.5, 1e300, true, false, null, [], ['x'], {}, { a: 1 }];

function allowedTypes(s: Schema, resolve: (s: Schema) => Schema): Set<string> {
  const r = resolve(s);
  if (r.anyOf) {
    const out = new Set<string>();
    for (const b of r.anyOf) for (const t of allowedTypes(b, resolve)) out.add(t);
    return out;
  }
  const out = new Set<string>();
  if (r.type === 'number') out.add('integer').add('number');
  else if (r.type) out.add(r.type);
  else out.add('any');
  if (r.nullable) out.add('null');
  return out;
}

/** Arbitraries for the schemas of one OpenAPI document (resolves its $refs). */
export function schemaGen(doc: { components?: { schemas?: Record<string, Schema> } }, override: Overrides): Gen {
  const resolve = (s: Schema): Schema => {
    if (!s.$ref) return s;
    const name = s.$ref.replace('#/components/schemas/', '');
    const target = doc.components?.schemas?.[name];
    if (!target) throw new Error(`unresolved $ref ${s.$ref}`);
    return resolve(target);
  };

  const validString = (s: Schema): fc.Arbitrary<string> => {
    const min = s.minLength ?? 0;
    const max = Math.min(s.maxLength ?? 40, 40);
    if (s.pattern) {
      const re = new RegExp(s.pattern);
      return fc.stringMatching(re).filter((v) => v.length >= min && v.length <= (s.maxLength ?? Infinity));
    }
    return fc.oneof(fc.string({ minLength: min, maxLength: Math.max(min, max) }), fc.string({ unit: 'grapheme', minLength: min, maxLength: Math.max(min, max) }));
  };

  const valid = (s0: Schema, field?: string): fc.Arbitrary<unknown> => {
    const o = field === undefined ? undefined : override[field];
    if (o) return o;
    const s = resolve(s0);
    const core = ((): fc.Arbitrary<unknown> => {
      if (s.anyOf) return fc.oneof(...s.anyOf.map((b) => valid(b, undefined)));
      if (s.enum) return fc.constantFrom(...s.enum);
      switch (s.type) {
        case 'string':
          return validString(s);
        case 'integer':
          return fc.integer({ min: s.minimum ?? -1_000_000, max: s.maximum ?? 1_000_000 });
        case 'number':
          return fc.double({ min: s.minimum ?? -1e6, max: s.maximum ?? 1e6, noNaN: true, noDefaultInfinity: true });
        case 'boolean':
          return fc.boolean();
        case 'null':
          return fc.constant(null);
        case 'array':
          return fc.array(valid(s.items ?? {}, field), { maxLength: Math.min(s.maxItems ?? 3, 3) });
        case 'object': {
          const props = s.properties ?? {};
          const required = new Set(s.required ?? []);
          const record: Record<string, fc.Arbitrary<unknown>> = {};
          for (const [k, v] of Object.entries(props)) record[k] = valid(v, k);
          const fixed = fc.record(record, { requiredKeys: [...required] });
          if (typeof s.additionalProperties === 'object') {
            const extra = fc.dictionary(override[`${field ?? ''}{}`] as fc.Arbitrary<string> | undefined ?? fc.string({ minLength: 1, maxLength: 12 }), valid(s.additionalProperties, undefined), { maxKeys: 3 });
            return fc.tuple(fixed, extra).map(([a, b]) => ({ ...b, ...a }));
          }
          return fixed;
        }
        default:
          return fc.jsonValue({ maxDepth: 2 });
      }
    })();
    return s.nullable ? fc.oneof(core, fc.constant(null)) : core;
  };

  const invalid = (s0: Schema, field?: string): fc.Arbitrary<unknown> => {
    const s = resolve(s0);
    const types = allowedTypes(s, resolve);
    const wrongType = SAMPLES.filter((v) => !types.has(typeOf(v)) && !(types.has('number') && typeof v === 'number'));
    const options: fc.Arbitrary<unknown>[] = [];
    if (!types.has('any') && wrongType.length > 0) options.push(fc.constantFrom(...wrongType));
    if (s.enum) options.push(fc.string({ maxLength: 12 }).filter((v) => !s.enum!.includes(v)));
    if (s.anyOf && s.anyOf.every((b) => resolve(b).enum)) {
      const all = s.anyOf.flatMap((b) => resolve(b).enum ?? []);
      options.push(fc.string({ maxLength: 12 }).filter((v) => !all.includes(v)));
    }
    if (s.type === 'string') {
      if (s.maxLength !== undefined) options.push(fc.integer({ min: s.maxLength + 1, max: s.maxLength + 64 }).map((n) => 'x'.repeat(n)));
      if (s.minLength !== undefined && s.minLength > 0) options.push(fc.constant(''));
      if (s.pattern) {
        const re = new RegExp(s.pattern);
        options.push(fc.string({ maxLength: 20 }).filter((v) => !re.test(v)));
      }
    }
    if (s.type === 'integer' || s.type === 'number') {
      if (s.minimum !== undefined) options.push(fc.integer({ min: s.minimum - 1_000_000, max: s.minimum - 1 }));
      if (s.maximum !== undefined) options.push(fc.integer({ min: s.maximum + 1, max: s.maximum + 1_000_000 }));
      if (s.type === 'integer') options.push(fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }).filter((v) => !Number.isInteger(v)));
    }
    if (s.type === 'array') {
      if (s.maxItems !== undefined) {
        const n = s.maxItems + 1;
        options.push(fc.array(valid(s.items ?? {}, field), { minLength: n, maxLength: n }));
      }
      if (s.items) options.push(fc.tuple(fc.array(valid(s.items, field), { maxLength: 2 }), invalid(s.items, field)).map(([ok, bad]) => [...ok, bad]));
    }
    if (s.type === 'object') {
      const props = Object.entries(s.properties ?? {});
      const required = s.required ?? [];
      const base = valid(s, field) as fc.Arbitrary<Record<string, unknown>>;
      if (required.length > 0) {
        options.push(fc.tuple(base, fc.constantFrom(...required)).map(([v, k]) => {
          const copy = { ...v };
          delete copy[k];
          return copy;
        }));
      }
      if (s.additionalProperties === false) {
        const known = new Set(props.map(([k]) => k));
        const unknownKey = fc.oneof(fc.constantFrom('colour', 'Image', 'image_name ', 'constructor', 'toString', 'x'), fc.string({ minLength: 1, maxLength: 10 })).filter((k) => !known.has(k));
        options.push(fc.tuple(base, unknownKey, fc.jsonValue({ maxDepth: 1 })).map(([v, k, x]) => ({ ...v, [k]: x })));
      }
      if (props.length > 0) {
        options.push(
          fc.constantFrom(...props).chain(([k, p]) => fc.tuple(base, invalid(p, k)).map(([v, bad]) => ({ ...v, [k]: bad }))),
        );
      }
    }
    if (options.length === 0) throw new Error(`no invalid value for schema ${JSON.stringify(s)}`);
    return fc.oneof(...options);
  };

  return { valid, invalid };
}

/** Whether a string (a path parameter or a query value) satisfies a string schema: enums, anyOf, pattern, lengths. */
export function stringAccepted(s: Schema, v: string): boolean {
  if (s.anyOf) return s.anyOf.some((b) => stringAccepted(b, v));
  if (s.type !== undefined && s.type !== 'string') return false;
  if (s.enum && !s.enum.includes(v)) return false;
  if (s.pattern && !new RegExp(s.pattern).test(v)) return false;
  if (s.minLength !== undefined && v.length < s.minLength) return false;
  if (s.maxLength !== undefined && v.length > s.maxLength) return false;
  return true;
}
