/**
 * The command helper's process (see `command-helper.ts`): spawns each command it is sent
 * and sends back how it ended. It exits when its parent goes away.
 */
import type { HelperReply, HelperRequest } from './command-helper.js';
import { spawnOutcome } from './exec.js';

process.on('message', (m: HelperRequest) => {
  const { id, cmd, args, ...opts } = m;
  void spawnOutcome(cmd, args, opts).then((outcome) => process.send?.({ id, outcome } satisfies HelperReply));
});
// The parent closed the channel (it closed the helper, or it died): nothing more will come.
process.on('disconnect', () => process.exit(0));
