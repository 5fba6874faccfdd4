/**
 * Why an entry point could not be opened. The codes are the domain's (core/errors.ts), so
 * the service layer can rethrow one as its own typed error without a lookup table.
 */
export class GatewayError extends Error {
  constructor(
    readonly code: 'conflict' | 'invalid_argument',
    message: string,
  ) {
    super(message);
    this.name = 'GatewayError';
  }
}
