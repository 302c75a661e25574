/**
 * An alert on its way to the operator's webhooks: each webhook takes it once; a webhook that is down is tried
 * again (durably: a worker restart changes nothing) until it takes it, for up to a week.
 */
import { log } from '@temporalio/workflow';
import { alertDelivery } from './activity-options';
import type { AlertDeliveryInput } from './definitions';

export async function alertDeliveryWorkflow(input: AlertDeliveryInput): Promise<void> {
  await Promise.all(
    input.webhooks.map((webhook) =>
      alertDelivery(`Deliver alert ${input.alertId} to ${webhook}`).deliverAlert({
        alertId: input.alertId,
        webhook,
      }),
    ),
  );
  log.info('Alert delivered to every webhook', { alertId: input.alertId, webhooks: input.webhooks.length });
}
