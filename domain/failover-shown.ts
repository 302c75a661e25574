/**
 * How a failover workflow shows in the Temporal Web UI, whoever starts it: the Slave's monitor, or the detector
 * when no monitor runs to take a failover it opened over. Workflow-safe.
 */
import type { SearchAttributePair } from '@temporalio/common';
import { VmsFailoverTarget, VmsFolder, VmsServerId } from './search-attributes';
import type { BrokenReason } from './site';

export const failoverWorkflowShown = (
  slaveId: string,
  reason: BrokenReason,
  deadlineMs: number,
): { staticSummary: string; staticDetails: string; typedSearchAttributes: SearchAttributePair[] } => ({
  staticSummary: `Failover of ${slaveId} (${reason})`,
  staticDetails: [
    `Slave **${slaveId}** was deemed broken (${reason}) at ${new Date(deadlineMs).toISOString()}.`,
    'Steps: move it to Broken recorders, claim a standby with the same drive letters, promote it,',
    'rebind the IP cameras (analog cameras stay), protect the promoted server, reinstall the plugins.',
  ].join('\n'),
  typedSearchAttributes: [
    { key: VmsServerId, value: slaveId },
    { key: VmsFolder, value: 'BrokenRecorders' },
    { key: VmsFailoverTarget, value: 'pending' },
  ],
});
