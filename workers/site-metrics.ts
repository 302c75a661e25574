/**
 * The site's own metrics on the worker's Prometheus endpoint, next to the SDK's: servers by folder, failovers
 * started and completed by reason, open failovers by step, plugin reinstalls and alerts by outcome, and the
 * detection and recording-gap histograms of failovers that restored recording. Read from PostgreSQL (the
 * system of record) at a steady period, so every worker of a site shows the same totals whoever ran the
 * failover; the histograms are fed only by the worker leading detection, so a failover is observed once.
 */
import type { MetricCounter, MetricGauge, MetricHistogram, MetricMeter } from '@temporalio/common';
import type { Pool } from 'pg';
import type { Logger } from '../infra/logger';
import { ALERT_KINDS } from '../store/alerts';
import type { RestoredCursor } from '../store/site-figures';
import { databaseNow, listRestoredAfter, readSiteFigures } from '../store/site-figures';

/** Histogram buckets in seconds, from a prompt failover to one an operator should look at. */
export const FAILOVER_SECONDS_BUCKETS = [0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800];
export const HISTOGRAM_NAMES = ['vms_failover_detection_seconds', 'vms_failover_recording_gap_seconds'];

const SERVER_FOLDERS = [
  { role: 'master', status: 'active' },
  { role: 'slave', status: 'active' },
  { role: 'slave', status: 'broken' },
  { role: 'failover', status: 'standby' },
];
const FAILOVER_REASONS = ['heartbeat-timeout', 'all-disks-broken'];
const OPEN_FAILOVER_STEPS = [
  'started',
  'waiting-for-standby',
  'standby-claimed',
  'promoted',
  'recording-restored',
];
const REINSTALL_OUTCOMES = ['installed', 'needs-manual-action', 'handed-over'];
const RESTORED_PER_READ = 500;

export interface SiteMetricsDeps {
  db: Pool;
  meter: MetricMeter;
  /** Whether this worker leads detection now (the histograms' single writer). */
  leading: () => boolean;
  periodMs: number;
  logger: Logger;
}

/** Counters exported from totals kept in PostgreSQL: each read adds what the total grew by. */
class TotalsCounter {
  private readonly exported = new Map<string, number>();

  constructor(private readonly counter: MetricCounter) {}

  publish(total: number, tags: Record<string, string>): void {
    const key = JSON.stringify(tags);
    const before = this.exported.get(key);
    // Known series are served from the first read, at 0 if need be. A total that shrank (a database restored
    // from a backup) is counted on from where it is now.
    if (before === undefined || total > before) this.counter.add(total - (before ?? 0), tags);
    this.exported.set(key, total);
  }
}

export class SiteMetrics {
  private readonly servers: MetricGauge;
  private readonly monitored: MetricGauge;
  private readonly leadingGauge: MetricGauge;
  private readonly openFailovers: MetricGauge;
  private readonly pendingReinstalls: MetricGauge;
  private readonly unacknowledgedAlerts: MetricGauge;
  private readonly failoversStarted: TotalsCounter;
  private readonly failoversCompleted: TotalsCounter;
  private readonly reinstalls: TotalsCounter;
  private readonly alertsRaised: TotalsCounter;
  private readonly detection: MetricHistogram;
  private readonly recordingGap: MetricHistogram;
  /** Every kind the code raises, and any other found in PostgreSQL (raised by a newer worker). */
  private readonly alertKinds = new Set<string>(ALERT_KINDS);
  /** The last restored failover observed; undefined until this worker first leads. */
  private cursor: RestoredCursor | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> = Promise.resolve();

  constructor(private readonly deps: SiteMetricsDeps) {
    const { meter } = deps;
    this.servers = meter.createGauge('vms_servers', 'int', '', 'Servers by role and status');
    this.monitored = meter.createGauge('vms_monitored_slaves', 'int', '', 'Slaves a monitor watches');
    this.leadingGauge = meter.createGauge(
      'vms_detector_leading',
      'int',
      '',
      '1 on the worker leading detection',
    );
    this.openFailovers = meter.createGauge(
      'vms_failovers_open',
      'int',
      '',
      'Failovers not completed, by step',
    );
    this.pendingReinstalls = meter.createGauge(
      'vms_plugin_reinstalls_pending',
      'int',
      '',
      'Reinstalls not done',
    );
    this.unacknowledgedAlerts = meter.createGauge('vms_alerts_unacknowledged', 'int', '', 'Alerts, by kind');
    this.failoversStarted = new TotalsCounter(
      meter.createCounter('vms_failovers_started_total', '', 'By reason'),
    );
    this.failoversCompleted = new TotalsCounter(
      meter.createCounter('vms_failovers_completed_total', '', 'By reason'),
    );
    this.reinstalls = new TotalsCounter(
      meter.createCounter('vms_plugin_reinstalls_total', '', 'Finished reinstalls, by outcome'),
    );
    this.alertsRaised = new TotalsCounter(meter.createCounter('vms_alerts_raised_total', '', 'By kind'));
    this.detection = meter.createHistogram(
      'vms_failover_detection_seconds',
      'float',
      's',
      "From a Slave's deadline to its failover's start",
    );
    this.recordingGap = meter.createHistogram(
      'vms_failover_recording_gap_seconds',
      'float',
      's',
      "From a Slave's deadline to its cameras recording on the promoted server",
    );
  }

  start(): void {
    this.readSoon();
    this.timer = setInterval(() => this.readSoon(), this.deps.periodMs);
  }

  stop(): Promise<void> {
    clearInterval(this.timer);
    return this.reading;
  }

  private readSoon(): void {
    this.reading = this.reading.then(() =>
      this.read().catch((error: unknown) =>
        this.deps.logger.warn({ err: error }, 'Site metrics not read: kept their last values'),
      ),
    );
  }

  private async read(): Promise<void> {
    const figures = await readSiteFigures(this.deps.db);
    const total = <T>(rows: T[], match: (row: T) => boolean, value: (row: T) => number): number =>
      rows.filter(match).reduce((sum, row) => sum + value(row), 0);

    for (const folder of SERVER_FOLDERS) {
      const servers = figures.servers.find((row) => row.role === folder.role && row.status === folder.status);
      this.servers.set(servers?.count ?? 0, folder);
    }
    this.monitored.set(figures.monitored);
    for (const reason of FAILOVER_REASONS) {
      const ofReason = (row: { reason: string }) => row.reason === reason;
      this.failoversStarted.publish(
        total(figures.failovers, ofReason, (row) => row.count),
        { reason },
      );
      this.failoversCompleted.publish(
        total(
          figures.failovers,
          (row) => ofReason(row) && row.status === 'completed',
          (row) => row.count,
        ),
        { reason },
      );
    }
    for (const step of OPEN_FAILOVER_STEPS) {
      this.openFailovers.set(
        total(
          figures.failovers,
          (row) => row.status === step,
          (row) => row.count,
        ),
        { step },
      );
    }
    for (const outcome of REINSTALL_OUTCOMES) {
      const finished = figures.pluginReinstalls.find((row) => row.status === outcome);
      this.reinstalls.publish(finished?.count ?? 0, { outcome });
    }
    this.pendingReinstalls.set(figures.pluginReinstalls.find((row) => row.status === 'pending')?.count ?? 0);
    for (const row of figures.alerts) this.alertKinds.add(row.kind);
    for (const kind of this.alertKinds) {
      const ofKind = (row: { kind: string }) => row.kind === kind;
      this.alertsRaised.publish(
        total(figures.alerts, ofKind, (row) => row.count),
        { kind },
      );
      this.unacknowledgedAlerts.set(
        total(
          figures.alerts,
          (row) => ofKind(row) && !row.acknowledged,
          (row) => row.count,
        ),
        { kind },
      );
    }
    await this.observeRestored();
  }

  private async observeRestored(): Promise<void> {
    const leading = this.deps.leading();
    this.leadingGauge.set(leading ? 1 : 0);
    if (!leading) {
      // The next lead starts from its own start: the worker leading before observed the failovers until then.
      this.cursor = undefined;
      return;
    }
    this.cursor ??= { camerasCommittedAt: await databaseNow(this.deps.db), id: '' };
    for (;;) {
      const restored = await listRestoredAfter(this.deps.db, this.cursor, RESTORED_PER_READ);
      for (const failover of restored) {
        this.detection.record(Math.max(0, failover.detectionMs) / 1000, { reason: failover.reason });
        this.recordingGap.record(Math.max(0, failover.recordingGapMs) / 1000, { reason: failover.reason });
        this.cursor = { camerasCommittedAt: failover.camerasCommittedAt, id: failover.id };
      }
      if (restored.length < RESTORED_PER_READ) return;
    }
  }
}
