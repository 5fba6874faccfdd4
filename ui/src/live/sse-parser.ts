/**
 * A Server-Sent Events parser (the text/event-stream format of the HTML standard), pure so it
 * can be tested on its own. The page reads /events with fetch() and feeds the decoded text here
 * chunk by chunk, because EventSource cannot send the Authorization header the daemon wants.
 *
 * Covers what the daemon sends and what the format allows: LF, CRLF or CR line ends (also split
 * across chunks), `event:`, `data:` (several lines joined with \n), `id:`, comment lines
 * (`: ping`), and one optional space after the colon. `retry:` is ignored: the page keeps its own
 * backoff. A message without data is not dispatched, as in the standard.
 */
export interface SseMessage {
  event: string;
  data: string;
  id: string | null;
}

export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private lastId: string | null = null;

  /** Feeds decoded text; returns the messages it completed. */
  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf('\r', start);
      const lf = this.buffer.indexOf('\n', start);
      if (cr < 0 && lf < 0) break;
      const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      if (end === cr && end === this.buffer.length - 1) break; // a CR last: wait, a LF may follow
      const line = this.buffer.slice(start, end);
      start = end + (end === cr && this.buffer[end + 1] === '\n' ? 2 : 1);
      const message = this.line(line);
      if (message) out.push(message);
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  /** Forgets a half-received message (after the connection dropped). */
  reset(): void {
    this.buffer = '';
    this.event = '';
    this.data = [];
  }

  private line(line: string): SseMessage | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null; // comment, e.g. the daemon's `: ping`
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.lastId = value;
    return null;
  }

  private dispatch(): SseMessage | null {
    const event = this.event || 'message';
    const data = this.data;
    this.event = '';
    this.data = [];
    if (data.length === 0) return null;
    return { event, data: data.join('\n'), id: this.lastId };
  }
}
