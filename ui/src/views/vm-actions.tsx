import { useState } from 'preact/hooks';
import { api } from '../api/client';
import type { VmView } from '../api/types';
import { ConfirmDialog } from '../components/confirm-dialog';
import { href } from '../router';

type Action = 'stop' | 'start' | 'pause' | 'resume';

/** Which actions make sense in which state (the daemon has the last word and says why not). */
const ALLOWED: Record<Action | 'snapshot', readonly string[]> = {
  stop: ['booting', 'running', 'paused'],
  start: ['stopped', 'failed', 'suspended'],
  pause: ['running'],
  resume: ['paused'],
  snapshot: ['running', 'paused'],
};

export function VmActions({ vm }: { vm: VmView }) {
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);

  async function run(label: string, call: () => Promise<unknown>, done?: string): Promise<boolean> {
    setBusy(label);
    setError(null);
    setNote(null);
    try {
      await call();
      if (done) setNote(done);
      return true;
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      return false;
    } finally {
      setBusy(null);
    }
  }

  const button = (action: Action, label: string) => (
    <button
      type="button"
      data-testid={`action-${action}`}
      disabled={busy !== null || !ALLOWED[action].includes(vm.state)}
      onClick={() => void run(action, () => api.vmAction(vm.id, action))}
    >
      {busy === action ? `${label}…` : label}
    </button>
  );

  const snapshot = (): void => {
    const name = window.prompt('Snapshot name (lowercase letters, digits and -)', `${vm.name}-snap`);
    if (name) void run('snapshot', () => api.vmSnapshot(vm.id, name.trim()), `Snapshot ${name.trim()} taken.`);
  };

  const remove = async (): Promise<void> => {
    setConfirming(false);
    if (await run('delete', () => api.vmDelete(vm.id))) location.hash = href.fleet();
  };

  return (
    <div class="actions">
      {button('start', 'Start')}
      {button('stop', 'Stop')}
      {button('pause', 'Pause')}
      {button('resume', 'Resume')}
      <button type="button" data-testid="action-snapshot" disabled={busy !== null || !ALLOWED.snapshot.includes(vm.state)} onClick={snapshot}>
        {busy === 'snapshot' ? 'Snapshot…' : 'Snapshot'}
      </button>
      <button type="button" class="danger" data-testid="action-delete" disabled={busy !== null} onClick={() => setConfirming(true)}>
        {busy === 'delete' ? 'Deleting…' : 'Delete'}
      </button>
      {error && (
        <span class="error" data-testid="action-error">
          {error}
        </span>
      )}
      {note && <span class="muted">{note}</span>}
      {confirming && (
        <ConfirmDialog
          title={`Delete ${vm.name}?`}
          confirmLabel="Delete"
          confirmTestId="confirm-delete"
          onConfirm={() => void remove()}
          onCancel={() => setConfirming(false)}
        >
          The VM is stopped at once (forced) and deleted; its address is freed. Its volumes are kept.
        </ConfirmDialog>
      )}
    </div>
  );
}
