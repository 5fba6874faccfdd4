/**
 * Typed errors of the domain. Core and adapters throw these; the API maps them to
 * `{error: {code, message, field?}}` with the status below in one place, and the CLI
 * prints the message on one line and exits with a code derived from `code`.
 */
export const ERROR_STATUS = {
  invalid_argument: 400,
  unauthorized: 401,
  not_found: 404,
  already_exists: 409,
  conflict: 409,
  in_use: 409,
  failed_precondition: 409,
  payload_too_large: 413,
  limit_exceeded: 429,
  internal: 500,
  vmm_failed: 502,
  boot_failed: 502,
  unavailable: 503,
  timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class UigniterError extends Error {
  readonly code: ErrorCode;
  readonly field: string | undefined;

  constructor(code: ErrorCode, message: string, field?: string) {
    super(message);
    this.name = 'UigniterError';
    this.code = code;
    this.field = field;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export const invalid = (field: string, message: string): UigniterError =>
  new UigniterError('invalid_argument', message, field);

export const notFound = (what: string, id: string): UigniterError =>
  new UigniterError('not_found', `${what} '${id}' not found`);

export function isUigniterError(e: unknown): e is UigniterError {
  return e instanceof UigniterError;
}

/** The message of anything thrown, for logs and error bodies. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
