import { Fragment, type ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api/client';
import type { StateTransition, VmView as Vm } from '../api/types';
import { StateBadge } from '../components/state-badge';
import { useNow } from '../components/use-now';
import { dateTime, duration, fixed, mib, ms, shortDigest } from '../format';
import { findVm, live } from '../live/store';
import { useObservable } from '../observable';
import { href } from '../router';
import { uptimeMs } from './fleet-columns';
import { VmActions } from './vm-actions';
import { useVmLog, type InitLine } from './vm-log';

const ACTIVE = new Set(['creating', 'booting', 'running', 'paused', 'stopping']);

export function VmDetailView({ id }: { id: string }) {
  const data = useObservable(live);
  const vm = findVm(data, id);
  if (!vm) {
    return (
      <section class="view">
        <p class="muted">
          No VM {id} (deleted, or never there). <a href={href.fleet()}>Back to the fleet</a>
        </p>
      </section>
    );
  }
  return <VmDetail vm={vm} usage={data.usage[vm.id]} />;
}

function VmDetail({ vm, usage }: { vm: Vm; usage: { cpuPct: number; rssMiB: number } | undefined }) {
  const now = useNow(1000);
  const up = uptimeMs(vm, now);
  return (
    <section class="view">
      <div class="toolbar">
        <a href={href.fleet()} class="crumb">
          Fleet
        </a>
        <span class="muted">/</span>
        <h1>{vm.name}</h1>
        <StateBadge state={vm.state} testId="vm-state" />
        <span class="muted mono">{vm.id}</span>
        {up !== null && <span class="muted">up {duration(up)}</span>}
        {usage && (
          <span class="muted">
            CPU {fixed(usage.cpuPct)} % · RSS {fixed(usage.rssMiB, 0)} MiB
          </span>
        )}
      </div>
      {vm.error && <p class="error">Error: {vm.error}</p>}
      <VmActions vm={vm} />
      <div class="grid-log">
        <Panel title="Spec">
          <Spec vm={vm} />
        </Panel>
        <Panel title="State history">
          <History vm={vm} />
        </Panel>
      </div>
      <Logs vm={vm} />
    </section>
  );
}

function Panel({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <div class="panel">
      <h2>{title}</h2>
      {children}
    </div>
  );
}

function Spec({ vm }: { vm: Vm }) {
  const env = Object.entries(vm.env);
  const rows: [string, ComponentChildren][] = [
    ['image', <span title={vm.imageDigest}>{vm.image} <span class="muted mono">{shortDigest(vm.imageDigest)}</span></span>],
    ['vcpus', vm.vcpus],
    ['memMiB', mib(vm.memMiB)],
    ['driver', vm.driver],
    ['origin', vm.origin],
    ['restoredFrom', vm.restoredFrom ?? '–'],
    ['pool', vm.pool ?? '–'],
    ['ip / mac', `${vm.ip ?? '–'} / ${vm.mac ?? '–'}`],
    ['readOnly', vm.readOnly ? 'yes (root not writable)' : 'no'],
    ['args', vm.args === null ? <span class="muted">image default</span> : <code>{JSON.stringify(vm.args)}</code>],
    ['env', env.length === 0 ? '–' : <ul class="plain mono">{env.map(([k, v]) => <li key={k}>{k}={v}</li>)}</ul>],
    ['ports', vm.ports.length === 0 ? '–' : vm.ports.map((p) => `${p.hostAddr}:${p.hostPort} → ${p.guestPort}`).join(', ')],
    [
      'volumes',
      vm.volumes.length === 0 ? '–' : (
        <ul class="plain">
          {vm.volumes.map((v) => (
            <li key={v.name}>
              {v.name} at {v.mountPath} ({mib(v.sizeMiB)}
              {v.readOnly ? ', read-only' : ''})
            </li>
          ))}
        </ul>
      ),
    ],
    ['pid', vm.pid ?? '–'],
    ['boots', vm.boots],
    ['bootMs', ms(vm.bootMs)],
    ['exitCode', vm.exitCode ?? '–'],
    ['created', dateTime(vm.createdAt)],
    ['started', vm.startedAt ? dateTime(vm.startedAt) : '–'],
    ['ready', vm.readyAt ? dateTime(vm.readyAt) : '–'],
    ['stopped', vm.stoppedAt ? dateTime(vm.stoppedAt) : '–'],
  ];
  return (
    <dl class="kv-grid" data-testid="vm-spec">
      {rows.map(([k, v]) => (
        <Fragment key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </Fragment>
      ))}
    </dl>
  );
}

/** GET /vm/<id>/history, read again whenever the VM changes state. */
function History({ vm }: { vm: Vm }) {
  const [transitions, setTransitions] = useState<StateTransition[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let current = true;
    api.vmHistory(vm.id).then(
      (r) => current && (setTransitions(r.transitions), setError(null)),
      (err: unknown) => current && setError(err instanceof Error ? err.message : String(err)),
    );
    return () => {
      current = false;
    };
  }, [vm.id, vm.state, vm.stateChangedAt]);
  if (error) return <p class="error">{error}</p>;
  if (!transitions) return <p class="muted">Loading…</p>;
  if (transitions.length === 0) return <p class="muted">No transitions since the daemon started.</p>;
  return (
    <div class="scroll-y">
      <table class="list" data-testid="vm-history">
        <thead>
          <tr>
            <th>at</th>
            <th>from</th>
            <th>to</th>
            <th>error</th>
          </tr>
        </thead>
        <tbody>
          {[...transitions].reverse().map((t, i) => (
            <tr key={`${t.at}-${i}`}>
              <td class="nowrap">{dateTime(t.at)}</td>
              <td>{t.from ? <StateBadge state={t.from} /> : '–'}</td>
              <td>
                <StateBadge state={t.to} />
              </td>
              <td class="error">{t.error ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function describeInit(line: InitLine): string {
  if (line.kind === 'init' || !line.event) return line.text;
  const { event, ...rest } = line.event;
  const details = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return `${String(event)} ${details.join(' ')}`;
}

function Logs({ vm }: { vm: Vm }) {
  // a new boot, or the VM coming back, opens the log again (the follow ends when the VM stops)
  const log = useVmLog(vm.id, `${vm.boots}:${ACTIVE.has(vm.state)}`);
  const pre = useRef<HTMLPreElement>(null);
  const stick = useRef(true);
  useLayoutEffect(() => {
    const el = pre.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [log.app]);
  const status = log.status === 'following' ? 'following' : log.status === 'ended' ? 'ended (VM not running)' : log.status === 'loading' ? 'opening…' : `error: ${log.error}`;
  return (
    <div class="grid-log">
      <div class="panel">
        <h2>
          Console <span class="muted small">{status}</span>
        </h2>
        <pre
          ref={pre}
          class="log"
          data-testid="vm-log"
          onScroll={(e) => {
            const el = e.currentTarget;
            stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 30;
          }}
        >
          {log.app.join('\n')}
        </pre>
      </div>
      <div class="panel">
        <h2>Guest init</h2>
        <ul class="protocol" data-testid="vm-protocol">
          {vm.restoredFrom && (
            <li class="note muted">
              Restored from {vm.restoredFrom} ({vm.origin}): its boot lines (@uigniter started, ready) were printed by the VM that snapshot was taken
              from, not in this console.
            </li>
          )}
          {log.init.map((l, i) => (
            <li key={i} class={l.kind}>
              <span class="tag">{l.kind === 'protocol' ? '@uigniter' : 'init'}</span> {describeInit(l)}
            </li>
          ))}
          {log.init.length === 0 && !vm.restoredFrom && <li class="muted">No init lines yet.</li>}
        </ul>
      </div>
    </div>
  );
}
