/** Custom search attributes that let operators find failovers in the Temporal Web UI. Workflow-safe. */
import { defineSearchAttributeKey } from '@temporalio/common';

export const VmsServerId = defineSearchAttributeKey('VmsServerId', 'KEYWORD');
export const VmsFolder = defineSearchAttributeKey('VmsFolder', 'KEYWORD');
export const VmsRole = defineSearchAttributeKey('VmsRole', 'KEYWORD');
export const VmsFailoverTarget = defineSearchAttributeKey('VmsFailoverTarget', 'KEYWORD');

export const ALL_SEARCH_ATTRIBUTES = [VmsServerId, VmsFolder, VmsRole, VmsFailoverTarget];
