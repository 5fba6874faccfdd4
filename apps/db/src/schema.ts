import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

const SCHEMA_VERSION = 1;

/**
 * Opens (creating if needed) the task database. WAL with synchronous=FULL
 * fsyncs every commit before the HTTP answer goes out, so a VM that is
 * stopped or killed loses no acknowledged change.
 */
export function openTaskDatabase(file: string): Database.Database {
  mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(`${file} has schema version ${version}, newer than this db service (${SCHEMA_VERSION})`);
  }
  if (version < 1) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS tasks (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        state            TEXT    NOT NULL CHECK (state IN ('ready', 'leased', 'done', 'failed')),
        input            TEXT    NOT NULL UNIQUE,
        result           TEXT,
        attempts         INTEGER NOT NULL DEFAULT 0,
        lease_owner      TEXT,
        lease_token      TEXT,
        lease_expires_at INTEGER,
        created_at       INTEGER NOT NULL,
        finished_at      INTEGER,
        finished_by      TEXT,
        error            TEXT
      );
      CREATE INDEX IF NOT EXISTS tasks_open ON tasks (id) WHERE state IN ('ready', 'leased');
      PRAGMA user_version = ${SCHEMA_VERSION};
    `);
  }
  return db;
}
