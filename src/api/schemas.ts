import { Type, type Static } from 'typebox';

/** JSON schemas of the API: they validate input, shape output and make /openapi.json. */

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'machine-readable: invalid_argument, not_found, conflict, ...' }),
      message: Type.String(),
      field: Type.Optional(Type.String({ description: 'the request field at fault, when there is one' })),
    }),
  },
  { $id: 'Error' },
);

export const Name = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$', description: 'lowercase letters, digits and -' });

const Port = Type.Integer({ minimum: 1, maximum: 65535 });

export const RunBody = Type.Object(
  {
    image: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'NAME[:TAG] to boot (or give snapshot)' })),
    snapshot: Type.Optional(Type.String({ minLength: 1, maxLength: 63, description: 'a snapshot or template to clone: a new VM restored from it' })),
    boot: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('cold'), Type.Literal('template')], { description: "auto (default): from the spec's template when one exists, else cold; cold: never from a template; template: only from one" })),
    driver: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: "VMM driver (default: the daemon's)" })),
    name: Type.Optional(Name),
    vcpus: Type.Optional(Type.Integer({ minimum: 1, maximum: 32 })),
    memMiB: Type.Optional(Type.Integer({ minimum: 1, maximum: 65536 })),
    args: Type.Optional(Type.Union([Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 256 }), Type.Null()])),
    env: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String({ maxLength: 16384 }))),
    ports: Type.Optional(
      Type.Array(
        Type.Object(
          {
            hostPort: Port,
            guestPort: Port,
            hostAddr: Type.Optional(Type.String({ description: 'default 127.0.0.1' })),
          },
          { additionalProperties: false },
        ),
        { maxItems: 32 },
      ),
    ),
    volumes: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Name,
            mountPath: Type.String({ minLength: 2, maxLength: 255 }),
            sizeMiB: Type.Optional(Type.Integer({ minimum: 16, maximum: 1048576 })),
            readOnly: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        { maxItems: 4 },
      ),
    ),
    stopTimeoutMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600000 })),
    readOnly: Type.Optional(Type.Boolean({ description: 'run the image with no writable layer over its root: writes to / fail (EROFS); /tmp, /run and volumes stay writable' })),
    codeCacheMiB: Type.Optional(Type.Integer({ minimum: 16, maximum: 1024, description: "the bound of the VMM's translation cache under TCG, MiB (default 32; KVM has none): a busy guest needs more" })),
  },
  { additionalProperties: false, $id: 'RunRequest' },
);
export type RunBody = Static<typeof RunBody>;

/** The body clients of the original (Go) Uigniter send to POST /vm/run. */
export const LegacyRunBody = Type.Object(
  {
    image_name: Type.String({ minLength: 1 }),
    cmdline: Type.Optional(Type.String()),
    read_only: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type LegacyRunBody = Static<typeof LegacyRunBody>;

export const VmView = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    state: Type.Union([
      Type.Literal('creating'),
      Type.Literal('booting'),
      Type.Literal('running'),
      Type.Literal('paused'),
      Type.Literal('stopping'),
      Type.Literal('suspended'),
      Type.Literal('stopped'),
      Type.Literal('failed'),
    ]),
    origin: Type.Union([Type.Literal('cold'), Type.Literal('template'), Type.Literal('snapshot'), Type.Literal('pool')], { description: 'how its current run began' }),
    pool: Type.Union([Type.String(), Type.Null()], { description: 'the warm pool it is a spare of, until handed out' }),
    restoredFrom: Type.Union([Type.String(), Type.Null()], { description: 'the snapshot or template its memory comes from' }),
    driver: Type.String(),
    image: Type.String(),
    imageDigest: Type.String(),
    ip: Type.Union([Type.String(), Type.Null()]),
    mac: Type.Union([Type.String(), Type.Null()]),
    vcpus: Type.Integer(),
    memMiB: Type.Integer(),
    args: Type.Union([Type.Array(Type.String()), Type.Null()]),
    env: Type.Record(Type.String(), Type.String()),
    ports: Type.Array(Type.Object({ hostAddr: Type.String(), hostPort: Type.Integer(), guestPort: Type.Integer() })),
    volumes: Type.Array(Type.Object({ name: Type.String(), mountPath: Type.String(), sizeMiB: Type.Integer(), readOnly: Type.Boolean() })),
    readOnly: Type.Boolean({ description: 'its root is the image alone, not writable' }),
    codeCacheMiB: Type.Union([Type.Integer(), Type.Null()], { description: "the translation cache's bound asked for under TCG, MiB (null: the driver's default)" }),
    pid: Type.Union([Type.Integer(), Type.Null()]),
    boots: Type.Integer(),
    bootMs: Type.Union([Type.Integer(), Type.Null()]),
    exitCode: Type.Union([Type.Integer(), Type.Null()]),
    error: Type.Union([Type.String(), Type.Null()]),
    createdAt: Type.String(),
    stateChangedAt: Type.String(),
    startedAt: Type.Union([Type.String(), Type.Null()]),
    readyAt: Type.Union([Type.String(), Type.Null()]),
    stoppedAt: Type.Union([Type.String(), Type.Null()]),
    ip_address: Type.Optional(Type.String({ description: 'only in answers to the original Uigniter body' })),
  },
  { $id: 'Vm' },
);
export type VmView = Static<typeof VmView>;

export const VmRef = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128, description: 'VM id or name' }) });

export const WaitQuery = Type.Object(
  { wait: Type.Optional(Type.Union([Type.Literal('ready'), Type.Literal('launched')], { description: "answer when the app is ready (default) or once the VMM runs" })) },
  { additionalProperties: false },
);

export const StopQuery = Type.Object(
  {
    timeout: Type.Optional(Type.String({ pattern: '^[0-9]{1,6}$', description: 'seconds before a forced stop (default: the VM\'s stopTimeoutMs)' })),
    suspend: Type.Optional(Type.Union([Type.Literal('0'), Type.Literal('1'), Type.Literal('true'), Type.Literal('false')], { description: 'save memory instead: the next start resumes where it was' })),
  },
  { additionalProperties: false },
);

export const SnapshotBody = Type.Object({ name: Name }, { additionalProperties: false, $id: 'SnapshotRequest' });

export const SnapshotView = Type.Object(
  {
    name: Type.String(),
    kind: Type.Union([Type.Literal('snapshot'), Type.Literal('template')]),
    source: Type.Object({ id: Type.String(), name: Type.String() }),
    image: Type.String(),
    imageDigest: Type.String(),
    driver: Type.String(),
    vcpus: Type.Integer(),
    memMiB: Type.Integer(),
    memory: Type.Union([Type.Literal('file'), Type.Literal('stream')], { description: 'file: RAM mapped copy-on-write by clones; stream: RAM inside the state' }),
    sizeBytes: Type.Integer({ description: 'bytes on disk' }),
    appQuiesced: Type.Boolean({ description: "the app's Node hooks were frozen: clones renew its randomness" }),
    usedBy: Type.Array(Type.String(), { description: 'running VMs whose memory it backs' }),
    createdAt: Type.String(),
  },
  { $id: 'Snapshot' },
);
export type SnapshotView = Static<typeof SnapshotView>;

export const SnapshotRef = Type.Object({ name: Type.String({ minLength: 1, maxLength: 63 }) });

export const DeleteQuery = Type.Object(
  {
    force: Type.Optional(Type.Union([Type.Literal('0'), Type.Literal('1'), Type.Literal('true'), Type.Literal('false')])),
    volumes: Type.Optional(Type.Union([Type.Literal('0'), Type.Literal('1'), Type.Literal('true'), Type.Literal('false')], { description: 'also delete its volumes' })),
  },
  { additionalProperties: false },
);

export const LogsQuery = Type.Object(
  {
    follow: Type.Optional(Type.Union([Type.Literal('0'), Type.Literal('1'), Type.Literal('true'), Type.Literal('false')])),
    tail: Type.Optional(Type.String({ pattern: '^[0-9]{1,7}$', description: 'only the last N lines' })),
  },
  { additionalProperties: false },
);

export const VmStatsView = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    usage: Type.Union([
      Type.Object({
        pssMiB: Type.Number({ description: 'proportional set size of the VMM' }),
        cpuPct: Type.Union([Type.Number(), Type.Null()], { description: 'percent of one core between the last two samples' }),
        growthMiB: Type.Number({ description: 'what the VMM may still add by itself (the translation cache up to its bound); admission keeps it free' }),
        at: Type.Integer({ description: 'when it was measured, ms since the epoch' }),
      }),
      Type.Null(),
    ], { description: "the usage meter's last figures; null until it has measured this VM" }),
    codeCache: Type.Union([
      Type.Object({
        boundMiB: Type.Integer(),
        usedMiB: Type.Number({ description: 'translated code it holds now' }),
        flushes: Type.Integer({ description: 'times it filled up and was emptied since the VMM started: a count that grows while the VM works means codeCacheMiB is too small (it thrashes)' }),
      }),
      Type.Null(),
    ], { description: "the VMM's translation cache, read now (QEMU's info jit); null under KVM" }),
  },
  { additionalProperties: false },
);

export type VmStatsView = Static<typeof VmStatsView>;

export const ImageView = Type.Object(
  {
    name: Type.String(),
    tag: Type.String(),
    digest: Type.String(),
    createdAt: Type.String(),
    runtime: Type.String(),
    sizeBytes: Type.Integer(),
    vcpus: Type.Integer(),
    memMiB: Type.Integer(),
    minMemMiB: Type.Integer(),
    ports: Type.Array(Type.Integer()),
    entrypoint: Type.Array(Type.String()),
    args: Type.Array(Type.String()),
  },
  { $id: 'Image' },
);
export type ImageView = Static<typeof ImageView>;

export const BuildImageBody = Type.Object(
  {
    path: Type.String({ minLength: 1, maxLength: 4096, description: 'app directory on the daemon host' }),
    name: Type.String({ minLength: 1, maxLength: 200, description: 'NAME[:TAG]' }),
  },
  { additionalProperties: false },
);

export const ImageRef = Type.Object({ name: Type.String({ minLength: 1, maxLength: 200, description: 'NAME[:TAG]' }) });

export const VolumeView = Type.Object(
  {
    name: Type.String(),
    sizeMiB: Type.Integer(),
    createdAt: Type.String(),
    attachedTo: Type.Union([Type.String(), Type.Null()]),
    usedBy: Type.Array(Type.String(), { description: 'VMs whose spec names it' }),
  },
  { $id: 'Volume' },
);
export type VolumeView = Static<typeof VolumeView>;

export const VolumeRef = Type.Object({ name: Name });

const WarmBody = Type.Object(
  {
    path: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: "an HTTP path to prime (it must be safe to repeat); default: the app's readiness check" })),
    requests: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, description: 'requests sent to each spare before it is paused (default 10)' })),
  },
  { additionalProperties: false, description: 'warm-up requests each spare serves before it is paused' },
);

export const PoolBody = Type.Object(
  {
    image: Type.String({ minLength: 1, maxLength: 200, description: 'NAME[:TAG]' }),
    vcpus: Type.Optional(Type.Integer({ minimum: 1, maximum: 32 })),
    memMiB: Type.Optional(Type.Integer({ minimum: 1, maximum: 65536 })),
    args: Type.Optional(Type.Union([Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 256 }), Type.Null()])),
    env: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String({ maxLength: 16384 }))),
    driver: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
    codeCacheMiB: Type.Optional(Type.Integer({ minimum: 16, maximum: 1024, description: "the bound of each VM's translation cache under TCG, MiB (default 32)" })),
    size: Type.Integer({ minimum: 0, maximum: 64, description: 'spares kept booted and paused' }),
    warm: Type.Optional(WarmBody),
  },
  { additionalProperties: false, $id: 'PoolRequest' },
);

export const PoolView = Type.Object(
  {
    id: Type.String(),
    image: Type.String(),
    imageDigest: Type.String(),
    vcpus: Type.Integer(),
    memMiB: Type.Integer(),
    env: Type.Record(Type.String(), Type.String()),
    args: Type.Union([Type.Array(Type.String()), Type.Null()]),
    driver: Type.String(),
    codeCacheMiB: Type.Union([Type.Integer(), Type.Null()], { description: "the spares' translation cache bound under TCG, MiB (null: the driver's default)" }),
    size: Type.Integer(),
    warm: Type.Object({ port: Type.Union([Type.Integer(), Type.Null()]), path: Type.Union([Type.String(), Type.Null()], { description: 'null: TCP connects' }), requests: Type.Integer() }),
    service: Type.Union([Type.String(), Type.Null()]),
    ready: Type.Array(Type.String(), { description: 'paused spares, ready to hand out' }),
    starting: Type.Array(Type.String(), { description: 'spares still booting' }),
    createdAt: Type.String(),
  },
  { $id: 'Pool' },
);
export type PoolView = Static<typeof PoolView>;

export const PoolRef = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

const ProbeBody = Type.Object(
  {
    http: Type.Optional(Type.Object({ path: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false })),
    tcp: Type.Optional(Type.Boolean()),
    intervalMs: Type.Optional(Type.Integer()),
    timeoutMs: Type.Optional(Type.Integer()),
    failures: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);

export const ServiceBody = Type.Object(
  {
    name: Name,
    image: Type.String({ minLength: 1, maxLength: 200, description: 'NAME[:TAG]' }),
    vcpus: Type.Optional(Type.Integer({ minimum: 1, maximum: 32 })),
    memMiB: Type.Optional(Type.Integer({ minimum: 1, maximum: 65536 })),
    args: Type.Optional(Type.Union([Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 256 }), Type.Null()])),
    env: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String({ maxLength: 16384 }))),
    codeCacheMiB: Type.Optional(Type.Integer({ minimum: 16, maximum: 1024, description: "the bound of each VM's translation cache under TCG, MiB (default 32)" })),
    port: Type.Optional(Type.Integer({ description: 'the guest port the app serves on; the gateway forwards to it' })),
    replicas: Type.Object({ min: Type.Integer(), max: Type.Integer() }, { additionalProperties: false }),
    health: Type.Optional(Type.Object({ readiness: Type.Optional(ProbeBody), liveness: Type.Optional(ProbeBody) }, { additionalProperties: false })),
    restart: Type.Optional(Type.Union([Type.Literal('always'), Type.Literal('on-failure'), Type.Literal('never')])),
    autoscale: Type.Optional(
      Type.Object(
        {
          metric: Type.Union([Type.Literal('inflight'), Type.Literal('rps'), Type.Literal('http-json')]),
          target: Type.Number(),
          url: Type.Optional(Type.String({ maxLength: 2048 })),
          field: Type.Optional(Type.String({ maxLength: 256 })),
          scaleToZeroAfterMs: Type.Optional(Type.Integer()),
          stableWindowMs: Type.Optional(Type.Integer()),
          panicWindowMs: Type.Optional(Type.Integer()),
          cooldownMs: Type.Optional(Type.Integer()),
        },
        { additionalProperties: false },
      ),
    ),
    pool: Type.Optional(Type.Object({ size: Type.Integer(), warm: Type.Optional(WarmBody) }, { additionalProperties: false })),
    gateway: Type.Optional(Type.Object({ hostPort: Type.Optional(Type.Integer()), hostAddr: Type.Optional(Type.String({ maxLength: 64 })) }, { additionalProperties: false })),
    stopTimeoutMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600000 })),
    scaleDown: Type.Optional(
      Type.Union([Type.Literal('remove'), Type.Literal('pause')], {
        description: "what a scale-down does with a running replica: remove it (default), or pause it for the next scale-up to resume first",
      }),
    ),
  },
  { additionalProperties: false, $id: 'ServiceRequest' },
);
export type ServiceBody = Static<typeof ServiceBody>;

export const ServicePatch = Type.Object(
  {
    replicas: Type.Optional(Type.Object({ min: Type.Optional(Type.Integer()), max: Type.Optional(Type.Integer()) }, { additionalProperties: false })),
    desired: Type.Optional(Type.Integer({ description: 'replicas wanted now (within min..max); the autoscaler, when set, changes it again' })),
  },
  { additionalProperties: false },
);

export const ServiceView = Type.Object(
  {
    name: Type.String(),
    image: Type.String(),
    port: Type.Union([Type.Integer(), Type.Null()]),
    replicas: Type.Object({ min: Type.Integer(), max: Type.Integer() }),
    restart: Type.String(),
    autoscale: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
    pool: Type.Union([Type.Object({ id: Type.String(), size: Type.Integer() }), Type.Null()]),
    scaleDown: Type.String(),
    status: Type.Object({ desired: Type.Integer(), ready: Type.Integer(), running: Type.Integer(), paused: Type.Integer({ description: 'replicas a scale-down paused, kept for the next scale-up' }) }),
    gateway: Type.Union([Type.String(), Type.Null()], { description: 'the URL that reaches the service from the host' }),
    vms: Type.Array(Type.Object({ name: Type.String(), state: Type.String(), ip: Type.Union([Type.String(), Type.Null()]), origin: Type.String() })),
    createdAt: Type.String(),
  },
  { $id: 'Service' },
);
export type ServiceView = Static<typeof ServiceView>;

export const ServiceRef = Type.Object({ name: Type.String({ minLength: 1, maxLength: 63 }) });

export type ServiceEventView = Static<typeof ServiceEventView>;
export const ServiceEventView = Type.Object({
  id: Type.Integer(),
  at: Type.String(),
  kind: Type.String(),
  message: Type.String(),
  data: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
});

export type ScalePointView = Static<typeof ScalePointView>;
export const ScalePointView = Type.Object({
  t: Type.Number(),
  metric: Type.Union([Type.Number(), Type.Null()]),
  desired: Type.Integer(),
  ready: Type.Integer(),
  running: Type.Integer(),
  decision: Type.Optional(Type.Object({ from: Type.Integer(), to: Type.Integer(), reason: Type.String() })),
});
