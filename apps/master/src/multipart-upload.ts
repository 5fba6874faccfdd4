import busboy from 'busboy';
import type { IncomingMessage } from 'node:http';
import { HttpError } from '@uigniter-demo/common/http-error';
import { tooLarge } from '@uigniter-demo/common/http-io';

/** Room for multipart boundaries and part headers around the file itself. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

/**
 * Receives the file field `fieldName` of a multipart/form-data request into
 * memory, at most `maxBytes`. Nothing is written anywhere: the caller
 * validates the bytes before storing them.
 */
export function receiveFileField(req: IncomingMessage, fieldName: string, maxBytes: number): Promise<Buffer> {
  const contentType = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data\b/i.test(contentType)) {
    req.resume();
    return Promise.reject(
      new HttpError(415, 'unsupported_media_type', `expected multipart/form-data with a file field "${fieldName}"`),
    );
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes + MULTIPART_OVERHEAD_BYTES) {
    req.resume();
    return Promise.reject(tooLarge(maxBytes));
  }

  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (err: HttpError | undefined, file?: Buffer): void => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve(file as Buffer);
    };

    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        limits: { fileSize: maxBytes, files: 4, fields: 20, parts: 30, fieldSize: 64 * 1024 },
      });
    } catch (err) {
      req.resume();
      settle(new HttpError(400, 'invalid_multipart', err instanceof Error ? err.message : String(err)));
      return;
    }

    let file: Buffer | undefined;
    let truncated = false;
    let fieldWasText = false;
    parser.on('file', (name, stream) => {
      if (name !== fieldName || file !== undefined || truncated) {
        stream.resume();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on('data', (chunk: Buffer) => {
        if (truncated) return;
        chunks.push(chunk);
        size += chunk.length;
      });
      stream.on('limit', () => {
        truncated = true;
        chunks.length = 0;
      });
      stream.on('end', () => {
        if (!truncated) file = Buffer.concat(chunks, size);
      });
    });
    parser.on('field', (name) => {
      if (name === fieldName) fieldWasText = true;
    });
    parser.on('close', () => {
      if (truncated) settle(tooLarge(maxBytes));
      else if (file !== undefined) settle(undefined, file);
      else {
        const hint = fieldWasText ? ' (it was sent as text: upload it as a file)' : '';
        settle(new HttpError(400, 'missing_field', `file field "${fieldName}" is required${hint}`, fieldName));
      }
    });
    parser.on('error', (err: unknown) => {
      req.unpipe(parser);
      req.resume();
      settle(new HttpError(400, 'invalid_multipart', err instanceof Error ? err.message : String(err)));
    });
    req.on('close', () => {
      if (!req.complete) settle(new HttpError(400, 'aborted', 'the client aborted the upload'));
    });
    req.pipe(parser);
  });
}
