import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';

/*
 * Why a persistence of our own: aedes 1.x ships only an in-memory one, and
 * the maintained alternatives need MongoDB or Redis (another VM each). No
 * file-backed persistence for the aedes 1.x async interface is kept up.
 * So this wraps aedes-persistence's own in-memory implementation (which
 * keeps doing all the matching and queueing) and mirrors every state change
 * that must survive a restart into SQLite on DATA_DIR:
 *   - retained messages (control/active, setpoints, the latest reading),
 *   - subscriptions (so persistent sessions, clean:false, are still known),
 *   - the per-client queues of QoS 1 messages not yet acknowledged,
 *   - incoming QoS 2 packets (unused here, kept for completeness).
 * At start the tables are loaded back into a fresh in-memory persistence.
 * Not persisted: message ids (reassigned when a client reconnects, which
 * aedes does anyway), wills (none of our clients use one).
 */

/** The aedes-persistence 11 async interface, as far as we use it. */
export interface PersistedPacket {
  cmd?: string;
  brokerId?: string;
  brokerCounter?: number;
  topic: string;
  payload: Buffer | string;
  qos: number;
  retain?: boolean;
  dup?: boolean;
  messageId?: number;
  [key: string]: unknown;
}
export interface PersistedClient {
  id: string;
}
export interface PersistedSubscription {
  topic: string;
  qos: number;
  rh?: number;
  rap?: boolean;
  nl?: boolean;
  [key: string]: unknown;
}
interface QueueTarget {
  clientId: string;
  [key: string]: unknown;
}

interface AsyncMemoryPersistence {
  setup(broker: unknown): Promise<void>;
  storeRetained(packet: PersistedPacket): Promise<void>;
  createRetainedStream(pattern: string): Readable;
  createRetainedStreamCombi(patterns: string[]): Readable;
  addSubscriptions(client: PersistedClient, subs: PersistedSubscription[]): Promise<void>;
  removeSubscriptions(client: PersistedClient, topics: string[]): Promise<void>;
  subscriptionsByClient(client: PersistedClient): Promise<PersistedSubscription[]>;
  countOffline(): Promise<{ subsCount: number; clientsCount: number }>;
  subscriptionsByTopic(pattern: string): Promise<QueueTarget[]>;
  cleanSubscriptions(client: PersistedClient): Promise<void>;
  outgoingEnqueue(sub: QueueTarget, packet: PersistedPacket): Promise<void>;
  outgoingEnqueueCombi(subs: QueueTarget[], packet: PersistedPacket): Promise<void>;
  outgoingUpdate(client: PersistedClient, packet: PersistedPacket): Promise<void>;
  outgoingClearMessageId(client: PersistedClient, packet: PersistedPacket): Promise<PersistedPacket | undefined>;
  outgoingStream(client: PersistedClient): Readable;
  incomingStorePacket(client: PersistedClient, packet: PersistedPacket): Promise<void>;
  incomingGetPacket(client: PersistedClient, packet: PersistedPacket): Promise<PersistedPacket>;
  incomingDelPacket(client: PersistedClient, packet: PersistedPacket): Promise<void>;
  cleanIncoming(client: PersistedClient): Promise<void>;
  putWill(client: PersistedClient, packet: PersistedPacket): Promise<void>;
  getWill(client: PersistedClient): Promise<PersistedPacket | undefined>;
  delWill(client: PersistedClient): Promise<PersistedPacket | undefined>;
  streamWill(brokers?: Record<string, number>): Readable;
  getClientList(topic: string): Readable;
  destroy(): Promise<void>;
}

const require = createRequire(import.meta.url);
// The async in-memory implementation is a CommonJS class without its own typings for this path.
const MemoryPersistence = require('aedes-persistence/asyncPersistence.js') as new () => AsyncMemoryPersistence;

function serialize(packet: PersistedPacket): string {
  const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(String(packet.payload ?? ''));
  return JSON.stringify({
    cmd: packet.cmd ?? 'publish',
    brokerId: packet.brokerId,
    brokerCounter: packet.brokerCounter,
    topic: packet.topic,
    qos: packet.qos,
    retain: packet.retain ?? false,
    dup: packet.dup ?? false,
    messageId: packet.messageId,
    payload: payload.toString('base64'),
  });
}

function deserialize(json: string): PersistedPacket {
  const stored = JSON.parse(json) as PersistedPacket & { payload: string };
  return { ...stored, payload: Buffer.from(stored.payload, 'base64') };
}

export type SyncMode = 'full' | 'normal';

export interface PersistenceCounts {
  retained: number;
  subscriptions: number;
  queued: number;
}

export class SqlitePersistence {
  private readonly memory = new MemoryPersistence();
  private readonly db: Database.Database;
  private readonly statements: Record<string, Database.Statement>;

  constructor(file: string, sync: SyncMode = 'normal') {
    mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${sync === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS retained (topic TEXT PRIMARY KEY, packet TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS subscriptions (
        client_id TEXT NOT NULL, topic TEXT NOT NULL, sub TEXT NOT NULL, PRIMARY KEY (client_id, topic));
      CREATE TABLE IF NOT EXISTS outgoing (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL,
        broker_id TEXT NOT NULL, broker_counter INTEGER NOT NULL, packet TEXT NOT NULL,
        UNIQUE (client_id, broker_id, broker_counter));
      CREATE TABLE IF NOT EXISTS incoming (
        client_id TEXT NOT NULL, message_id INTEGER NOT NULL, packet TEXT NOT NULL, PRIMARY KEY (client_id, message_id));
    `);
    const prepare = (sql: string): Database.Statement => this.db.prepare(sql);
    this.statements = {
      putRetained: prepare('INSERT INTO retained (topic, packet) VALUES (?, ?) ON CONFLICT(topic) DO UPDATE SET packet = excluded.packet'),
      delRetained: prepare('DELETE FROM retained WHERE topic = ?'),
      putSub: prepare('INSERT INTO subscriptions (client_id, topic, sub) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET sub = excluded.sub'),
      delSub: prepare('DELETE FROM subscriptions WHERE client_id = ? AND topic = ?'),
      delSubs: prepare('DELETE FROM subscriptions WHERE client_id = ?'),
      enqueue: prepare('INSERT OR IGNORE INTO outgoing (client_id, broker_id, broker_counter, packet) VALUES (?, ?, ?, ?)'),
      dequeue: prepare('DELETE FROM outgoing WHERE client_id = ? AND broker_id = ? AND broker_counter = ?'),
      putIncoming: prepare('INSERT OR REPLACE INTO incoming (client_id, message_id, packet) VALUES (?, ?, ?)'),
      delIncoming: prepare('DELETE FROM incoming WHERE client_id = ? AND message_id = ?'),
      cleanIncoming: prepare('DELETE FROM incoming WHERE client_id = ?'),
    };
  }

  private run(name: string, ...params: unknown[]): void {
    (this.statements[name] as Database.Statement).run(...params);
  }

  /** What was loaded back (for the start-up log line). */
  counts(): PersistenceCounts {
    const count = (table: string): number => (this.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    return { retained: count('retained'), subscriptions: count('subscriptions'), queued: count('outgoing') };
  }

  async setup(broker: unknown): Promise<void> {
    await this.memory.setup(broker);
    for (const row of this.db.prepare('SELECT packet FROM retained').all() as Array<{ packet: string }>) {
      await this.memory.storeRetained(deserialize(row.packet));
    }
    const subs = new Map<string, PersistedSubscription[]>();
    for (const row of this.db.prepare('SELECT client_id, sub FROM subscriptions').all() as Array<{ client_id: string; sub: string }>) {
      const list = subs.get(row.client_id) ?? [];
      list.push(JSON.parse(row.sub) as PersistedSubscription);
      subs.set(row.client_id, list);
    }
    for (const [id, list] of subs) await this.memory.addSubscriptions({ id }, list);
    for (const row of this.db.prepare('SELECT client_id, packet FROM outgoing ORDER BY seq').all() as Array<{ client_id: string; packet: string }>) {
      await this.memory.outgoingEnqueue({ clientId: row.client_id }, deserialize(row.packet));
    }
    for (const row of this.db.prepare('SELECT client_id, packet FROM incoming').all() as Array<{ client_id: string; packet: string }>) {
      await this.memory.incomingStorePacket({ id: row.client_id }, deserialize(row.packet));
    }
  }

  async storeRetained(packet: PersistedPacket): Promise<void> {
    await this.memory.storeRetained(packet);
    if (packet.payload.length === 0) this.run('delRetained', packet.topic);
    else this.run('putRetained', packet.topic, serialize(packet));
  }

  createRetainedStream(pattern: string): Readable {
    return this.memory.createRetainedStream(pattern);
  }

  createRetainedStreamCombi(patterns: string[]): Readable {
    return this.memory.createRetainedStreamCombi(patterns);
  }

  async addSubscriptions(client: PersistedClient, subs: PersistedSubscription[]): Promise<void> {
    await this.memory.addSubscriptions(client, subs);
    this.db.transaction(() => {
      for (const sub of subs) this.run('putSub', client.id, sub.topic, JSON.stringify(sub));
    })();
  }

  async removeSubscriptions(client: PersistedClient, topics: string[]): Promise<void> {
    await this.memory.removeSubscriptions(client, topics);
    this.db.transaction(() => {
      for (const topic of topics) this.run('delSub', client.id, topic);
    })();
  }

  subscriptionsByClient(client: PersistedClient): Promise<PersistedSubscription[]> {
    return this.memory.subscriptionsByClient(client);
  }

  countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    return this.memory.countOffline();
  }

  subscriptionsByTopic(pattern: string): Promise<QueueTarget[]> {
    return this.memory.subscriptionsByTopic(pattern);
  }

  async cleanSubscriptions(client: PersistedClient): Promise<void> {
    await this.memory.cleanSubscriptions(client);
    this.run('delSubs', client.id);
  }

  async outgoingEnqueue(sub: QueueTarget, packet: PersistedPacket): Promise<void> {
    await this.memory.outgoingEnqueue(sub, packet);
    this.enqueueRow(sub.clientId, packet);
  }

  async outgoingEnqueueCombi(subs: QueueTarget[], packet: PersistedPacket): Promise<void> {
    await this.memory.outgoingEnqueueCombi(subs, packet);
    if (subs.length === 0) return;
    this.db.transaction(() => {
      for (const sub of subs) this.enqueueRow(sub.clientId, packet);
    })();
  }

  private enqueueRow(clientId: string, packet: PersistedPacket): void {
    if (packet.brokerId === undefined || packet.brokerCounter === undefined) return;
    this.run('enqueue', clientId, packet.brokerId, packet.brokerCounter, serialize(packet));
  }

  outgoingUpdate(client: PersistedClient, packet: PersistedPacket): Promise<void> {
    // Only the message id changes here; it is reassigned on reconnect, so it is not persisted.
    return this.memory.outgoingUpdate(client, packet);
  }

  async outgoingClearMessageId(client: PersistedClient, packet: PersistedPacket): Promise<PersistedPacket | undefined> {
    const removed = await this.memory.outgoingClearMessageId(client, packet);
    if (removed?.brokerId !== undefined && removed.brokerCounter !== undefined) {
      this.run('dequeue', client.id, removed.brokerId, removed.brokerCounter);
    }
    return removed;
  }

  outgoingStream(client: PersistedClient): Readable {
    return this.memory.outgoingStream(client);
  }

  async incomingStorePacket(client: PersistedClient, packet: PersistedPacket): Promise<void> {
    await this.memory.incomingStorePacket(client, packet);
    this.run('putIncoming', client.id, packet.messageId ?? 0, serialize(packet));
  }

  incomingGetPacket(client: PersistedClient, packet: PersistedPacket): Promise<PersistedPacket> {
    return this.memory.incomingGetPacket(client, packet);
  }

  async incomingDelPacket(client: PersistedClient, packet: PersistedPacket): Promise<void> {
    await this.memory.incomingDelPacket(client, packet);
    this.run('delIncoming', client.id, packet.messageId ?? 0);
  }

  async cleanIncoming(client: PersistedClient): Promise<void> {
    await this.memory.cleanIncoming(client);
    this.run('cleanIncoming', client.id);
  }

  putWill(client: PersistedClient, packet: PersistedPacket): Promise<void> {
    return this.memory.putWill(client, packet);
  }

  getWill(client: PersistedClient): Promise<PersistedPacket | undefined> {
    return this.memory.getWill(client);
  }

  delWill(client: PersistedClient): Promise<PersistedPacket | undefined> {
    return this.memory.delWill(client);
  }

  streamWill(brokers?: Record<string, number>): Readable {
    return this.memory.streamWill(brokers);
  }

  getClientList(topic: string): Readable {
    return this.memory.getClientList(topic);
  }

  async destroy(): Promise<void> {
    await this.memory.destroy();
    this.db.close();
  }
}
