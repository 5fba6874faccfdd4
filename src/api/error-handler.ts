import type { FastifyError, FastifyInstance } from 'fastify';
import { isUigniterError, messageOf } from '../core/errors.js';

interface ValidationDetail {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: { missingProperty?: string; additionalProperty?: string; allowedValues?: unknown };
}

/** "/ports/0/hostPort" -> "ports[0].hostPort"; adds the property a `required` or `additionalProperties` error is about. */
export function fieldOf(context: string, d: ValidationDetail): string {
  const path = (d.instancePath ?? '')
    .split('/')
    .filter(Boolean)
    .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
    .join('')
    .replace(/^\./, '');
  const extra = d.params?.missingProperty ?? d.params?.additionalProperty;
  const field = [path, extra].filter(Boolean).join(path && extra ? '.' : '');
  return field || context;
}

function describe(d: ValidationDetail, field: string): string {
  if (d.keyword === 'additionalProperties') return `unknown field '${field}'`;
  if (d.keyword === 'required') return `missing field '${field}'`;
  return `${field} ${d.message ?? 'is invalid'}`;
}

/**
 * The one place errors become HTTP answers: `{error: {code, message, field?}}` with the
 * status of the error's code. Unknown errors are 500 with the detail kept in the log.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (isUigniterError(err)) {
      return reply.status(err.status).send({ error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } });
    }
    if (err.validation && err.validation.length > 0) {
      const d = err.validation[0] as ValidationDetail;
      const field = fieldOf(err.validationContext ?? 'body', d);
      return reply.status(400).send({ error: { code: 'invalid_argument', message: describe(d, field), field } });
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.status(413).send({ error: { code: 'payload_too_large', message: 'request body is too large' } });
    }
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.status(415).send({ error: { code: 'invalid_argument', message: 'send JSON (content-type: application/json)' } });
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      // Malformed JSON and other client mistakes Fastify detects.
      return reply.status(err.statusCode).send({ error: { code: 'invalid_argument', message: err.message.replace(/^Body /, 'body ') } });
    }
    req.log.error({ err }, 'request failed');
    return reply.status(500).send({ error: { code: 'internal', message: messageOf(err) } });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });
}
