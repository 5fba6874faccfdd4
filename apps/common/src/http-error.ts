/** The JSON shape every demo service uses for errors. */
export interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

/**
 * An error that carries the HTTP status and machine-readable code a handler
 * wants to answer with; anything else thrown by a handler becomes a 500.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }

  toBody(): ErrorBody {
    const error: ErrorBody['error'] = { code: this.code, message: this.message };
    if (this.field !== undefined) error.field = this.field;
    return { error };
  }
}

export function invalidField(field: string, message: string): HttpError {
  return new HttpError(400, 'invalid_field', message, field);
}

export function missingField(field: string): HttpError {
  return new HttpError(400, 'missing_field', `field "${field}" is required`, field);
}

export function notFound(message: string): HttpError {
  return new HttpError(404, 'not_found', message);
}
