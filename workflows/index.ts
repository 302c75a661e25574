export { slaveMonitorWorkflow } from './monitor';
export { failoverWorkflow } from './failover';
export { restoreServerWorkflow } from './restore';
export { alertDeliveryWorkflow } from './alerts';
