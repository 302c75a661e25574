/**
 * Sends every alert to the operator's webhooks: a delivery workflow per alert (its id is the alert's, so two
 * workers starting one start it once), started as soon as PostgreSQL says an alert was raised, and every
 * minute for anything missed (a worker that was down, a webhook added since).
 */
import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { Pool } from 'pg';
import type { AlertsConfig } from '../infra/config';
import type { Logger } from '../infra/logger';
import { webhookName } from '../infra/signed-webhook';
import type { LivenessChannel, SessionListener } from '../liveness/pg-session';
import { alertsToDeliver } from '../store/alert-deliveries';
import type { alertDeliveryWorkflow } from '../workflows/alerts';

const SWEEP_MS = 60_000;

export class AlertDispatcher implements SessionListener {
  private timer: NodeJS.Timeout | undefined;
  private dispatching: Promise<void> = Promise.resolve();
  private readonly webhooks: string[];

  constructor(
    private readonly deps: {
      db: Pool;
      client: Client;
      site: string;
      taskQueue: string;
      alerts: AlertsConfig;
      logger: Logger;
    },
  ) {
    this.webhooks = deps.alerts.webhooks.map(webhookName);
  }

  start(): void {
    if (this.webhooks.length === 0) return;
    this.timer = setInterval(() => this.dispatchSoon(), SWEEP_MS);
    this.dispatchSoon();
  }

  stop(): Promise<void> {
    clearInterval(this.timer);
    return this.dispatching;
  }

  connected(): void {
    if (this.webhooks.length > 0) this.dispatchSoon();
  }

  lost(): void {
    // The sweep catches what was raised meanwhile.
  }

  notified(channel: LivenessChannel): void {
    if (channel === 'vms_alerts' && this.webhooks.length > 0) this.dispatchSoon();
  }

  private dispatchSoon(): void {
    this.dispatching = this.dispatching.then(() => this.dispatch());
  }

  private async dispatch(): Promise<void> {
    try {
      for (const alert of await alertsToDeliver(this.deps.db, this.webhooks)) {
        try {
          await this.deps.client.workflow.start<typeof alertDeliveryWorkflow>('alertDeliveryWorkflow', {
            workflowId: `vms-${this.deps.site}-alert-${alert.id}`,
            taskQueue: this.deps.taskQueue,
            args: [{ alertId: alert.id, webhooks: this.webhooks }],
            staticSummary: `Alert ${alert.kind}: ${alert.message.slice(0, 120)}`,
          });
        } catch (error) {
          if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
        }
      }
    } catch (error) {
      this.deps.logger.warn({ err: (error as Error).message }, 'Alerts not dispatched: trying again');
    }
  }
}
