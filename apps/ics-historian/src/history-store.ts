import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AlarmHandled, AlarmRaised, Reading } from '@uigniter-demo/ics-common/messages';

export const READING_TAGS = ['level1', 'level2', 'temp', 'inflow1', 'inflow2', 'heater'] as const;
export type ReadingTag = (typeof READING_TAGS)[number];

export interface StoredAlarm {
  id: string;
  kind: string | null;
  tag: string | null;
  value: number | null;
  seq: number | null;
  raisedAt: number | null;
  /** When the historian received the raise / the handling, on its own clock (ms since epoch). */
  raisedReceivedAt: number | null;
  handledAt: number | null;
  handledReceivedAt: number | null;
  handledBy: string | null;
  action: string | null;
  /** How many times `alarms/raised` delivered this id (stored once regardless). */
  deliveries: number;
  /** handledReceivedAt - raisedReceivedAt: one clock, so right across machines. */
  handledMs: number | null;
}

interface AlarmRow {
  id: string;
  kind: string | null;
  tag: string | null;
  value: number | null;
  seq: number | null;
  raised_at: number | null;
  raised_received_at: number | null;
  handled_at: number | null;
  handled_received_at: number | null;
  handled_by: string | null;
  action: string | null;
  deliveries: number;
}

/**
 * Readings and alarms in SQLite (WAL). Alarms are keyed by id, so one
 * delivered twice (QoS 1 is at-least-once) is stored once; its deliveries
 * are counted. Alarm writes use synchronous=FULL (fsynced before the PUBACK);
 * readings are written in one transaction per flush (every 500 ms).
 */
export class HistoryStore {
  private readonly db: Database.Database;
  private readonly insertReading: Database.Statement;
  private readonly upsertRaised: Database.Statement;
  private readonly upsertHandled: Database.Statement;
  private pending: Array<{ reading: Reading; receivedAt: number }> = [];

  constructor(file: string) {
    mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS readings (
        id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL, sample_time REAL NOT NULL,
        received_at INTEGER NOT NULL, level1 REAL, level2 REAL, temp REAL, inflow1 REAL, inflow2 REAL, heater REAL);
      CREATE INDEX IF NOT EXISTS readings_received ON readings (received_at);
      CREATE TABLE IF NOT EXISTS alarms (
        id TEXT PRIMARY KEY, kind TEXT, tag TEXT, value REAL, seq INTEGER, raised_at INTEGER, raised_received_at INTEGER,
        handled_at INTEGER, handled_received_at INTEGER, handled_by TEXT, action TEXT, deliveries INTEGER NOT NULL DEFAULT 0);
      CREATE INDEX IF NOT EXISTS alarms_pending ON alarms (id) WHERE kind IS NOT NULL AND handled_at IS NULL;
    `);
    this.insertReading = this.db.prepare(
      'INSERT INTO readings (seq, sample_time, received_at, level1, level2, temp, inflow1, inflow2, heater) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.upsertRaised = this.db.prepare(`
      INSERT INTO alarms (id, kind, tag, value, seq, raised_at, raised_received_at, deliveries) VALUES (?, ?, ?, ?, ?, ?, ?, 1)
      ON CONFLICT(id) DO UPDATE SET deliveries = deliveries + 1,
        kind = COALESCE(kind, excluded.kind), tag = COALESCE(tag, excluded.tag), value = COALESCE(value, excluded.value),
        seq = COALESCE(seq, excluded.seq), raised_at = COALESCE(raised_at, excluded.raised_at),
        raised_received_at = COALESCE(raised_received_at, excluded.raised_received_at)`);
    this.upsertHandled = this.db.prepare(`
      INSERT INTO alarms (id, handled_at, handled_received_at, handled_by, action) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT(id) DO UPDATE SET handled_at = COALESCE(handled_at, excluded.handled_at),
        handled_received_at = COALESCE(handled_received_at, excluded.handled_received_at),
        handled_by = COALESCE(handled_by, excluded.handled_by), action = COALESCE(action, excluded.action)`);
  }

  addReading(reading: Reading, receivedAt = Date.now()): void {
    this.pending.push({ reading, receivedAt });
  }

  /** Writes buffered readings in one transaction; returns how many. */
  flush(): number {
    const batch = this.pending;
    if (batch.length === 0) return 0;
    this.pending = [];
    this.db.transaction(() => {
      for (const { reading: r, receivedAt } of batch) {
        this.insertReading.run(r.seq, r.sampleTime, receivedAt, r.level1, r.level2, r.temp, r.inflow1, r.inflow2, r.heater);
      }
    })();
    return batch.length;
  }

  /** Returns true when this id was new. */
  alarmRaised(alarm: AlarmRaised, receivedAt = Date.now()): boolean {
    const before = this.alarm(alarm.id);
    this.upsertRaised.run(alarm.id, alarm.kind, alarm.tag, alarm.value, alarm.seq, alarm.raisedAt, receivedAt);
    return before?.kind == null;
  }

  alarmHandled(handled: AlarmHandled, receivedAt = Date.now()): void {
    this.upsertHandled.run(handled.id, handled.handledAt, receivedAt, handled.by, handled.action);
  }

  pendingAlarms(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM alarms WHERE kind IS NOT NULL AND handled_at IS NULL').get() as { n: number }).n;
  }

  alarm(id: string): StoredAlarm | undefined {
    const row = this.db.prepare('SELECT * FROM alarms WHERE id = ?').get(id) as AlarmRow | undefined;
    return row && toAlarm(row);
  }

  alarms(from: number, to: number, pendingOnly = false): StoredAlarm[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM alarms WHERE COALESCE(raised_received_at, handled_received_at) BETWEEN ? AND ?
         ${pendingOnly ? 'AND kind IS NOT NULL AND handled_at IS NULL' : ''} ORDER BY COALESCE(raised_received_at, handled_received_at), id`,
      )
      .all(from, to) as AlarmRow[];
    return rows.map(toAlarm);
  }

  readings(from: number, to: number, limit: number): Array<Record<string, number>> {
    this.flush();
    return this.db
      .prepare(
        `SELECT seq, sample_time AS sampleTime, received_at AS t, level1, level2, temp, inflow1, inflow2, heater
         FROM readings WHERE received_at BETWEEN ? AND ? ORDER BY id LIMIT ?`,
      )
      .all(from, to, limit) as Array<Record<string, number>>;
  }

  counts(): { readings: number; alarms: number } {
    this.flush();
    const n = (sql: string): number => (this.db.prepare(sql).get() as { n: number }).n;
    return { readings: n('SELECT count(*) AS n FROM readings'), alarms: n('SELECT count(*) AS n FROM alarms WHERE kind IS NOT NULL') };
  }

  close(): void {
    this.flush();
    this.db.close();
  }
}

function toAlarm(row: AlarmRow): StoredAlarm {
  return {
    id: row.id,
    kind: row.kind,
    tag: row.tag,
    value: row.value,
    seq: row.seq,
    raisedAt: row.raised_at,
    raisedReceivedAt: row.raised_received_at,
    handledAt: row.handled_at,
    handledReceivedAt: row.handled_received_at,
    handledBy: row.handled_by,
    action: row.action,
    deliveries: row.deliveries,
    handledMs: row.handled_received_at !== null && row.raised_received_at !== null ? row.handled_received_at - row.raised_received_at : null,
  };
}
