import type { VmState } from '../api/types';

/** Colour class of a VM state: running green, paused/suspended blue, starting amber, failed red, stopped grey. */
export function stateTone(state: string): string {
  switch (state as VmState) {
    case 'running':
      return 'ok';
    case 'paused':
    case 'suspended':
      return 'idle';
    case 'creating':
    case 'booting':
    case 'stopping':
      return 'busy';
    case 'failed':
      return 'bad';
    default:
      return 'off';
  }
}

/** A VM state in its colour; `tone` colours some other text (a count, say) as that state. */
export function StateBadge({ state, tone, testId }: { state: string; tone?: string; testId?: string }) {
  return (
    <span class={`state state-${stateTone(tone ?? state)}`} data-testid={testId}>
      {state}
    </span>
  );
}
