/**
 * Schema migrations, applied in order inside one transaction each; the applied version is
 * SQLite's user_version. Append only: never edit a migration that has shipped.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: VMs (a JSON record plus the columns we query by), IP leases, volumes.
  `
  CREATE TABLE vms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    image_ref TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE INDEX vms_state ON vms(state);
  CREATE INDEX vms_image ON vms(image_ref);
  CREATE TABLE ip_leases (
    ip TEXT PRIMARY KEY,
    vm_id TEXT NOT NULL UNIQUE,
    mac TEXT NOT NULL,
    leased_at TEXT NOT NULL
  );
  CREATE TABLE volumes (
    name TEXT PRIMARY KEY,
    size_mib INTEGER NOT NULL,
    uuid TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    attached_to TEXT
  );
  `,
  // 2: snapshots and templates (a JSON record plus the columns we query by).
  `
  CREATE TABLE snapshots (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    template_key TEXT UNIQUE,
    record TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  UPDATE vms SET record = json_insert(record, '$.origin', 'cold', '$.restoredFrom', json('null'),
    '$.suspendedState', json('null'), '$.spec.driver', 'qemu');
  `,
  // 3: warm pools; VMs may be a pool's spare.
  `
  CREATE TABLE pools (
    id TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  UPDATE vms SET record = json_insert(record, '$.pool', json('null'));
  `,
  // 4: services and their events; VMs may be a service's replica.
  `
  CREATE TABLE services (
    name TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE service_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT
  );
  CREATE INDEX service_events_service ON service_events(service, id);
  UPDATE vms SET record = json_insert(record, '$.service', json('null'));
  `,
  // 5: pools warm their spares (see core/pools/warm-up.ts); older pools send no warm-up.
  `
  UPDATE pools SET record = json_insert(record, '$.warm', json('{"port":null,"path":null,"requests":0}'));
  UPDATE services SET record = json_insert(record, '$.spec.pool.warm', json('{"requests":0}'))
    WHERE json_type(record, '$.spec.pool') = 'object';
  `,
];
