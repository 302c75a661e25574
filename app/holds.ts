/** Mass-failure holds and alerts, as operators decide on them. */
import type { Pool } from 'pg';
import type { AlertDelivery } from '../store/alert-deliveries';
import { deliveriesOf } from '../store/alert-deliveries';
import type { Alert } from '../store/alerts';
import { acknowledgeAlerts, listAlerts } from '../store/alerts';
import type { Hold } from '../store/holds';
import { decideHold, findOpenHold, listHolds } from '../store/holds';

/** Releases an open hold (its Slaves fail over, each confirmed first) or dismisses it (they stay as they are). */
export const decideMassFailureHold = (
  db: Pool,
  holdId: string,
  decision: 'released' | 'dismissed',
  by: string,
): Promise<Hold> => decideHold(db, { holdId, decision, by });

export const openMassFailureHold = (db: Pool): Promise<Hold | undefined> => findOpenHold(db);

export const recentMassFailureHolds = (db: Pool): Promise<Hold[]> => listHolds(db);

export const alerts = (db: Pool, options: { all?: boolean } = {}): Promise<Alert[]> =>
  listAlerts(db, options);

export const alertDeliveries = (db: Pool, alertIds: string[]): Promise<AlertDelivery[]> =>
  deliveriesOf(db, alertIds);

export const acknowledge = (db: Pool, ids: string[], by: string): Promise<string[]> =>
  acknowledgeAlerts(db, ids, by);
