import { createSocket, type Socket } from 'node:dgram';
import dnsPacket from 'dns-packet';

/**
 * A small authoritative DNS for VM names, served by the daemon on the host's address of
 * the VM network. `db` and `db.<domain>` answer with the VM's address while it has one; any
 * other name is refused at once (guests have no resolver beyond this one, and a refusal
 * fails fast where silence would make them wait for a timeout).
 */
export class DnsServer {
  private socket: Socket | null = null;
  private readonly names = new Map<string, string[]>();

  constructor(private readonly domain: string) {}

  /** A VM's name: one address, or none. */
  set(name: string, ip: string | null): void {
    this.setAll(name, ip ? [ip] : []);
  }

  /** A service's name: the addresses of its ready replicas (several A records). */
  setAll(name: string, ips: string[]): void {
    if (ips.length > 0) this.names.set(name.toLowerCase(), [...ips]);
    else this.names.delete(name.toLowerCase());
  }

  lookupAll(qname: string): string[] | null | undefined {
    const n = qname.toLowerCase().replace(/\.$/, '');
    const suffix = `.${this.domain}`;
    const short = n.endsWith(suffix) ? n.slice(0, -suffix.length) : n;
    if (short.includes('.')) return undefined; // not ours
    return this.names.get(short) ?? null;
  }

  lookup(qname: string): string | null | undefined {
    const all = this.lookupAll(qname);
    return all === undefined || all === null ? all : (all[0] ?? null);
  }

  async listen(address: string, port = 53): Promise<void> {
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    socket.on('message', (msg, rinfo) => {
      const reply = this.answer(msg);
      if (reply) socket.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', () => undefined);
    this.socket = socket;
  }

  get port(): number | null {
    return this.socket ? this.socket.address().port : null;
  }

  answer(msg: Buffer): Buffer | null {
    let q: dnsPacket.Packet;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return null;
    }
    const question = q.questions?.[0];
    if (!question || q.type !== 'query') return null;
    const base = { id: q.id, type: 'response' as const, questions: q.questions };
    const known = this.lookupAll(question.name);
    if (known === undefined) {
      return dnsPacket.encode({ ...base, flags: dnsPacket.RECURSION_DESIRED | 5 }); // REFUSED
    }
    if (known === null) {
      return dnsPacket.encode({ ...base, flags: dnsPacket.AUTHORITATIVE_ANSWER | 3 }); // NXDOMAIN
    }
    const answers: dnsPacket.Answer[] =
      question.type === 'A' ? known.map((ip) => ({ type: 'A' as const, name: question.name, ttl: 5, class: 'IN' as const, data: ip })) : [];
    return dnsPacket.encode({ ...base, flags: dnsPacket.AUTHORITATIVE_ANSWER, answers });
  }

  async close(): Promise<void> {
    const s = this.socket;
    this.socket = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
