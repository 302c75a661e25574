/**
 * Names shared by workers, clients and workflows. Workflow-safe: no Node imports.
 * Workflow ids carry the site, so several VMS sites can share one Temporal namespace.
 */

export const DEFAULT_TASK_QUEUE = 'vms-failover';
export const DEFAULT_SITE = 'main';

export const monitorWorkflowId = (site: string, serverId: string): string =>
  `vms-${site}-monitor-${serverId}`;

export const failoverWorkflowId = (site: string, slaveId: string, deadlineMs: number): string =>
  `vms-${site}-failover-${slaveId}-${new Date(deadlineMs).toISOString().replace(/[-:.]/g, '')}`;

export const restoreWorkflowId = (site: string, serverId: string): string =>
  `vms-${site}-restore-${serverId}`;
