import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

interface Props {
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  confirmTestId?: string;
  onConfirm: () => void;
  onCancel: () => void;
}

/** A modal question in the page (a native <dialog>, so Escape and focus work as expected). */
export function ConfirmDialog({ title, children, confirmLabel, confirmTestId, onConfirm, onCancel }: Props) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, []);
  return (
    <dialog ref={ref} class="dialog" onCancel={onCancel}>
      <h3>{title}</h3>
      <div class="dialog-body">{children}</div>
      <div class="dialog-actions">
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" class="danger" data-testid={confirmTestId} onClick={onConfirm}>
          {confirmLabel}
        </button>
      </div>
    </dialog>
  );
}
