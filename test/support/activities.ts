/** The activities as the worker builds them, over the test's VMS and fleet, and `db` (the test's by default). */
import type { Pool } from 'pg';
import { createActivities } from '../../activities';
import type { TestContext } from './world';

export const activitiesOf = ({ db, vms, fleet, config }: TestContext, over: Pool = db) =>
  createActivities({
    db: over,
    vms,
    monitors: fleet,
    tuning: config.failover,
    site: config.site,
    alerts: config.alerts,
  });
