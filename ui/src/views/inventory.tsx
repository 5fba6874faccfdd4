import type { ComponentChildren } from 'preact';
import { useMemo } from 'preact/hooks';
import type { SnapshotView } from '../api/types';
import { bytes, dateTime, mib, shortDigest } from '../format';
import { live } from '../live/store';
import { useObservable } from '../observable';
import { href } from '../router';

/** Links to the VMs named; past `max` of them, a count of the rest. */
function VmLinks({ names, max = 8 }: { names: readonly string[]; max?: number }) {
  if (names.length === 0) return <span class="muted">–</span>;
  return (
    <span class="links">
      {names.slice(0, max).map((n) => (
        <a key={n} href={href.vm(n)}>
          {n}
        </a>
      ))}
      {names.length > max && <span class="muted">+{names.length - max} more</span>}
    </span>
  );
}

function Section({ title, count, testId, children }: { title: string; count: number; testId: string; children: ComponentChildren }) {
  return (
    <div class="panel" data-testid={testId}>
      <h2>
        {title} <span class="muted small">{count}</span>
      </h2>
      {count === 0 ? <p class="muted">None.</p> : <div class="scroll-x">{children}</div>}
    </div>
  );
}

function SnapshotTable({ items }: { items: SnapshotView[] }) {
  return (
    <table class="list">
      <thead>
        <tr>
          <th>Name</th>
          <th>From VM</th>
          <th>Image</th>
          <th>vCPUs / memory</th>
          <th>Memory kept as</th>
          <th class="num">Size</th>
          <th>Used by</th>
          <th>Created</th>
        </tr>
      </thead>
      <tbody>
        {items.map((s) => (
          <tr key={s.name}>
            <td>{s.name}</td>
            <td>{s.source.name}</td>
            <td>{s.image}</td>
            <td>
              {s.vcpus} / {mib(s.memMiB)}
            </td>
            <td>{s.memory === 'file' ? 'file (shared copy-on-write)' : 'stream'}</td>
            <td class="num">{bytes(s.sizeBytes)}</td>
            <td>
              <VmLinks names={s.usedBy} />
            </td>
            <td class="nowrap">{dateTime(s.createdAt)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function InventoryView() {
  const data = useObservable(live);
  const { images, snapshots, templates, volumes } = data.inventory;
  const { pools } = data;

  // which VMs run each image (name:tag)
  const vmsByImage = useMemo(() => {
    const m = new Map<string, string[]>();
    for (const vm of Object.values(data.vms)) {
      const list = m.get(vm.image) ?? [];
      list.push(vm.name);
      m.set(vm.image, list);
    }
    return m;
  }, [data.vms]);
  const usersOf = (name: string, tag: string): string[] => [...(vmsByImage.get(`${name}:${tag}`) ?? []), ...(tag === 'latest' ? (vmsByImage.get(name) ?? []) : [])];
  const totalImages = images.reduce((n, i) => n + i.sizeBytes, 0);
  const totalSnapshots = [...snapshots, ...templates].reduce((n, s) => n + s.sizeBytes, 0);

  return (
    <section class="view">
      <div class="toolbar">
        <h1>Inventory</h1>
        <span class="muted">
          images {bytes(totalImages)} · snapshots and templates {bytes(totalSnapshots)} · volumes {mib(volumes.reduce((n, v) => n + v.sizeMiB, 0))}
        </span>
      </div>
      <Section title="Images" count={images.length} testId="inventory-images">
        <table class="list">
          <thead>
            <tr>
              <th>Image</th>
              <th>Digest</th>
              <th>Runtime</th>
              <th class="num">Size</th>
              <th>vCPUs / memory</th>
              <th>Ports</th>
              <th>VMs</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {images.map((i) => (
              <tr key={`${i.name}:${i.tag}`}>
                <td>
                  {i.name}:{i.tag}
                </td>
                <td class="mono" title={i.digest}>
                  {shortDigest(i.digest)}
                </td>
                <td>{i.runtime}</td>
                <td class="num">{bytes(i.sizeBytes)}</td>
                <td>
                  {i.vcpus} / {mib(i.memMiB)}
                </td>
                <td>{i.ports.join(', ') || '–'}</td>
                <td>
                  <VmLinks names={usersOf(i.name, i.tag)} />
                </td>
                <td class="nowrap">{dateTime(i.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="Snapshots" count={snapshots.length} testId="inventory-snapshots">
        <SnapshotTable items={snapshots} />
      </Section>
      <Section title="Templates" count={templates.length} testId="inventory-templates">
        <SnapshotTable items={templates} />
      </Section>
      <Section title="Warm pools" count={pools.length} testId="inventory-pools">
        <table class="list">
          <thead>
            <tr>
              <th>Pool</th>
              <th>Image</th>
              <th>vCPUs / memory</th>
              <th class="num">Size</th>
              <th>Ready (paused)</th>
              <th>Starting</th>
              <th>Service</th>
              <th>Warm-up</th>
            </tr>
          </thead>
          <tbody>
            {pools.map((p) => (
              <tr key={p.id}>
                <td>{p.id}</td>
                <td>{p.image}</td>
                <td>
                  {p.vcpus} / {mib(p.memMiB)}
                </td>
                <td class="num">{p.size}</td>
                <td>
                  {p.ready.length} <VmLinks names={p.ready} />
                </td>
                <td>
                  {p.starting.length} <VmLinks names={p.starting} />
                </td>
                <td>{p.service ? <a href={href.service(p.service)}>{p.service}</a> : '–'}</td>
                <td>
                  {p.warm.requests} × {p.warm.path ?? 'TCP connect'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="Volumes" count={volumes.length} testId="inventory-volumes">
        <table class="list">
          <thead>
            <tr>
              <th>Volume</th>
              <th class="num">Size</th>
              <th>Attached to</th>
              <th>Named by</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {volumes.map((v) => (
              <tr key={v.name}>
                <td>{v.name}</td>
                <td class="num">{mib(v.sizeMiB)}</td>
                <td>{v.attachedTo ? <a href={href.vm(v.attachedTo)}>{v.attachedTo}</a> : <span class="muted">–</span>}</td>
                <td>
                  <VmLinks names={v.usedBy} />
                </td>
                <td class="nowrap">{dateTime(v.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
    </section>
  );
}
