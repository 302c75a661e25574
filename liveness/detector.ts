/**
 * The liveness detector of a site: exactly one active at a time, in whichever worker holds its PostgreSQL
 * advisory lock (taken over within a second by another worker when that connection ends). It keeps every
 * monitored Slave's deadline in memory, to the millisecond, and tells the Slave's monitor at once when a
 * deadline passes or the disk health changes; otherwise it sends each monitor a checkpoint rarely.
 *
 * Why an advisory lock rather than a long-running activity: the lock costs no Temporal action and no
 * workflow history, PostgreSQL frees it the moment the leader's connection ends (process killed) or within
 * about 11 s (host gone: TCP keepalives), and its term number fences a leader that lost it: reports and
 * failovers carry the term, and PostgreSQL refuses a failover decided in an older one.
 *
 * At a deadline the detector takes the recording over itself, then tells the Slave's monitor: it opens the
 * failover in PostgreSQL (moved to Broken recorders, confirmed against the lease and the term as the monitor's
 * take-over confirms it), under the id the monitor's take-over uses, and runs the take-over's steps to the IP
 * cameras committed on a promoted standby (failover/take-over.ts), under the take-over's lock. Recording is
 * restored without waiting for Temporal, and the monitor's workflow tasks, which come after, do not compete
 * with the take-over for the machine; the monitor's own take-over finds every step done and goes on (plugins,
 * the promoted server's monitor). Never for a Slave whose disks were reported broken this term (its monitor
 * may fail it over for that, under another id): that monitor is told first and takes over alone. A step that
 * fails is left to the monitor's take-over, which Temporal retries.
 *
 * A failover opened so is recorded told once its monitor has the report. Until then every term tells it again
 * (the detector may have stopped in between), and a failover whose monitor no longer runs (stopped meanwhile)
 * gets its failover workflow started by the detector: no failover it opened stays with nobody to finish it.
 *
 * Outage grace: each term starts observing when it begins. A Slave's silence never counts from before that
 * moment, so after any outage of the orchestrator (worker, PostgreSQL, the whole Master) every Slave gets a
 * full timeout, and a Slave that died meanwhile fails over one timeout after observation resumed.
 */
import type { Client, Pool } from 'pg';
import { DomainError } from '../domain/errors';
import type { FailoverStart } from '../domain/contracts';
import type { LivenessReport, MassFailurePolicy, SilenceClaim } from '../domain/liveness';
import { failoverWorkflowId } from '../domain/names';
import type { DiskHealth } from '../domain/site';
import { brokenLetters, isMassFailure, missedTwoHeartbeats, silenceDeadline } from '../domain/liveness';
import { Batches } from '../infra/batches';
import type { Logger } from '../infra/logger';
import { Semaphore, UnderWay } from '../infra/limit';
import type { DetectorTerm } from '../store/detector-term';
import { beginTerm, recordVmsObservation, renewTerm } from '../store/detector-term';
import type { TakeOver } from '../domain/contracts';
import { TakeOverLeft, TakeOversHere } from '../failover/take-over';
import type { TakeOverSteps } from '../failover/take-over';
import { TakeOverLocks } from './take-over-locks';
import type { VmsControlPlane } from '../vms/control-plane';
import type { FailoverOpening, OpenedFailover } from '../store/failovers';
import { recordMonitorsTold, toldOpenFailovers, untoldFailovers } from '../store/failovers';
import { findHold, findOpenHold, holdFailover } from '../store/holds';
import { leasesWrittenByOthers, readLeases } from '../store/leases';
import type { RosterEntry } from '../store/monitoring';
import { loadRoster } from '../store/monitoring';
import type { Lease, LeaseTable } from './lease-table';
import type { LivenessChannel, PgSession, SessionListener } from './pg-session';
import type { FailoverStartOutcome, Reporter } from './reporter';
import { TimerQueue } from './timer-queue';

/** The same constant in every process of a site's database. */
export const DETECTOR_LOCK_ID = 7_263_914_003;

export interface DetectorOptions {
  /** This process, as the gateway names it in the leases it writes. */
  instance: string;
  /** The site, part of the failover ids its monitors use. */
  site: string;
  /** Opens a failover at its deadline and runs its take-over. */
  takeOver: Pick<TakeOverSteps, 'openFailovers' | 'takeOverFrom' | 'committedTakeOver'>;
  /** Where the monitor's take-over activity, run in this process, finds the detector's run. */
  takeOversHere?: TakeOversHere;
  /** How often a monitor hears that all is well when nothing changes. */
  checkpointPeriodMs: number;
  massFailure: MassFailurePolicy;
  /** How often gateways write their leases: leases other workers heard are read back as often. */
  leaseWriteIntervalMs: number;
  /** Writes the leases heard since the last write now: a disk health change is in PostgreSQL before it is reported. */
  writeLeasesNow: () => Promise<void>;
  /**
   * The VMS, whose server status is a heartbeat of every server it reaches that is watched through it
   * (no agent): polled this often while one is in the roster.
   */
  vms?: { controlPlane: Pick<VmsControlPlane, 'serverStatus' | 'serverStatusesOf'>; pollIntervalMs: number };
}

type WatchState =
  /** Its deadline is armed. */
  | 'watching'
  /** Its deadline passed and the monitor was (or is being) told. */
  | 'reported'
  /** Its deadline passed during a mass failure: waiting for the operator. */
  | 'held'
  /** An operator dismissed its held failover: nothing happens until it is heard again. */
  | 'dismissed';

interface Watched {
  entry: RosterEntry;
  state: WatchState;
  /** The deadline reported or held, when it was. */
  decidedDeadlineMs: number | null;
  decidedAtMs: number | null;
  /** The broken disks last reported to the monitor (letters joined); undefined: none reported this term. */
  reportedDisks: string | undefined;
  /** Broken disks were reported this term: the monitor may fail the Slave over for them, under its own id. */
  disksReportedBroken: boolean;
  nextCheckpointAtMs: number;
  lastLateReportMs: number | null;
}

export interface DetectorStatus {
  leading: boolean;
  term: number | null;
  observingSinceMs: number | null;
  watched: number;
  openHoldId: string | null;
  deadlinesReported: number;
  checkpointsSent: number;
  diskReportsSent: number;
  failoversHeld: number;
  /** Failovers this detector opened as it reported their deadline. */
  failoversOpened: number;
  /** Of those, the ones whose recording it took over to the camera move. */
  takeOversRun: number;
  reportFailures: number;
}

const LEADER_RETRY_MS = 1_000;
const RENEW_MS = 1_000;
const CHECKPOINT_SWEEP_MS = 1_000;
const ROSTER_RELOAD_MS = 60_000;
/**
 * Failovers left with nobody to finish them (their monitor not told, or ended before it started their failover
 * workflow) are looked for this often, and as a term starts.
 */
const OPENED_SWEEP_MS = 30_000;
/** Leases other gateways wrote this long ago are read again: commits may land out of order. */
const REMOTE_LOOK_BACK_MS = 5_000;
/** While another gateway was heard from this recently, a deadline waits for its leases to be read. */
const REMOTE_GATEWAY_MEMORY_MS = 30_000;
/** A broken Slave heard again is reported at most this often (its monitor fences it again). */
const LATE_REPORT_EVERY_MS = 60_000;
/** Checkpoints go out at an even, low rate; deadlines and disk reports never wait behind them. */
const MAX_CHECKPOINTS_IN_FLIGHT = 16;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5_000;
const NOT_RUNNING_RETRY_MS = 10_000;
/**
 * Take-overs past their first transaction run this many at once. A take-over spends most of its time waiting
 * for the VMS, so more than the pool's connections (10 by default) run well side by side: 100 failing at once
 * restored recording by 2.7 and 2.9 s (p99) at 40, against 3.6 and 3.8 s at 10 (docs/benchmark.md). Beyond,
 * they would only queue for connections ahead of the monitors' activities. Failovers are opened without
 * waiting for them.
 */
const MAX_TAKE_OVERS_AT_ONCE = 40;
/**
 * The longest a finished take-over's monitor waits to be told while other take-overs are under way: about
 * what 100 take-overs at once take on two cores (docs/benchmark.md). Only the failover workflow's later steps
 * (plugin reinstalls, the promoted server's monitor) wait; recording is restored already.
 */
const TELL_AFTER_TAKE_OVERS_MAX_MS = 3_000;
/**
 * The longest an opened failover's take-over waits for the openings decided with it or just after. Opened
 * in batches, they take tens of milliseconds; take-overs started meanwhile (claims, VMS calls) slowed the
 * last opening of 100 at 10,000 Slaves by about 110 ms (docs/benchmark.md).
 */
const OPENINGS_FIRST_MAX_MS = 1_000;

/** What a deadline's report says as it goes: its failover opened (or not), its take-over ended. */
interface Progress {
  openingEnded: () => void;
  ended: () => void;
}

export class Detector implements SessionListener {
  private term: DetectorTerm | undefined;
  private connection: Client | undefined;
  private sessionTurn: Promise<unknown> = Promise.resolve();
  /** The take-over locks held on the current session. */
  private takeOverLocks: TakeOverLocks | undefined;
  private readonly takeOversInFlight = new Semaphore(MAX_TAKE_OVERS_AT_ONCE);
  /** Failovers from their decision to their opening, which the take-overs wait for (or a while). */
  private readonly openingsUnderWay = new UnderWay();
  /** Take-overs from their decision to their end, whose monitors wait to be told until none is (or a while). */
  private readonly takeOversUnderWay = new UnderWay();
  private readonly takeOversHere: TakeOversHere;
  /** The failovers it opens, in batches: a hundred deadlines at once open in one transaction. */
  private readonly openings: Batches<FailoverStart, FailoverOpening>;
  /** Failovers whose monitor is being told. */
  private readonly telling = new Set<string>();
  private trying = false;
  private readonly watched = new Map<string, Watched>();
  private readonly deadlines: TimerQueue<string>;
  private readonly checkpointsInFlight = new Semaphore(MAX_CHECKPOINTS_IN_FLIGHT);
  private openHold: { id: string } | undefined;
  private timers: NodeJS.Timeout[] = [];
  private leaderRetry: NodeJS.Timeout | undefined;
  private rosterChanges = new Set<string>();
  private rosterReloadScheduled = false;
  private lastRemoteHeardMs = -Infinity;
  /** Since when the VMS's status is heard this term; null while its polls fail or before the first. */
  private vmsObservingSinceMs: number | null = null;
  private polling = false;
  private stopped = false;
  private readonly counts = {
    deadlinesReported: 0,
    checkpointsSent: 0,
    diskReportsSent: 0,
    failoversHeld: 0,
    failoversOpened: 0,
    takeOversRun: 0,
    reportFailures: 0,
  };

  constructor(
    private readonly db: Pool,
    session: PgSession,
    private readonly leases: LeaseTable,
    private readonly reporter: Reporter,
    private readonly options: DetectorOptions,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.takeOversHere = options.takeOversHere ?? new TakeOversHere();
    this.openings = new Batches((inputs) => options.takeOver.openFailovers(inputs, 'detector'));
    this.deadlines = new TimerQueue((due) => this.decide(due.map(({ key }) => key)), now);
    leases.onHeard((lease) => this.heard(lease));
    session.addListener(this);
  }

  status(): DetectorStatus {
    return {
      leading: this.term !== undefined,
      term: this.term?.term ?? null,
      observingSinceMs: this.term?.observingSinceMs ?? null,
      watched: this.watched.size,
      openHoldId: this.openHold?.id ?? null,
      ...this.counts,
    };
  }

  /** The deadline the detector holds for a server (tests and `vms status`). */
  deadlineOf(serverId: string): number | undefined {
    const watched = this.watched.get(serverId);
    return watched === undefined ? undefined : this.deadline(watched);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.leaderRetry);
    const connection = this.connection;
    const leading = this.term !== undefined;
    this.stepDown('stopping');
    if (leading && connection !== undefined) {
      await this.onSession(connection, (session) =>
        session.query('SELECT pg_advisory_unlock($1)', [DETECTOR_LOCK_ID]),
      ).catch(() => undefined);
    }
  }

  /**
   * The session runs the detector's queries one after the other, in the order asked: node-postgres
   * deprecates queuing queries on one client, and a lock taken must be asked before its report is sent.
   */
  private onSession<T>(connection: Client, work: (session: Client) => Promise<T>): Promise<T> {
    const turn = this.sessionTurn.then(() => work(connection));
    this.sessionTurn = turn.catch(() => undefined);
    return turn;
  }

  // The session: leadership is held on its connection.

  connected(connection: Client): void {
    this.connection = connection;
    this.takeOverLocks = new TakeOverLocks((work) => this.onSession(connection, work));
    clearInterval(this.leaderRetry);
    this.leaderRetry = setInterval(() => void this.tryToLead(), LEADER_RETRY_MS);
    void this.tryToLead();
  }

  lost(): void {
    this.connection = undefined;
    this.takeOverLocks = undefined;
    clearInterval(this.leaderRetry);
    this.stepDown('database session lost');
  }

  notified(channel: LivenessChannel, payload: string): void {
    if (this.term === undefined) return;
    if (channel === 'vms_liveness_roster') this.rosterChanged(payload);
    if (channel === 'vms_mass_failure_holds') void this.holdDecided();
  }

  private async tryToLead(): Promise<void> {
    const connection = this.connection;
    if (this.stopped || this.trying || this.term !== undefined || connection === undefined) return;
    this.trying = true;
    try {
      const { rows } = await this.onSession(connection, (session) =>
        session.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [DETECTOR_LOCK_ID]),
      );
      if (rows[0]?.locked !== true) return;
      try {
        const term = await this.onSession(connection, (session) =>
          beginTerm(session, this.options.instance, this.now()),
        );
        await this.lead(term, connection);
      } catch (error) {
        this.stepDown('could not start a term');
        await this.onSession(connection, (session) =>
          session.query('SELECT pg_advisory_unlock($1)', [DETECTOR_LOCK_ID]),
        ).catch(() => undefined);
        throw error;
      }
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'Detector could not take the lead: trying again');
    } finally {
      this.trying = false;
    }
  }

  private async lead(term: DetectorTerm, connection: Client): Promise<void> {
    const [roster, stored, hold] = await Promise.all([
      loadRoster(this.db),
      readLeases(this.db),
      findOpenHold(this.db),
    ]);
    if (this.connection !== connection) throw new Error('the session was lost while the term started');
    this.term = term;
    this.leases.seed(stored);
    this.openHold = hold === undefined ? undefined : { id: hold.id };
    for (const entry of roster) this.watch(entry);
    for (const held of hold?.slaves ?? []) {
      const watched = this.watched.get(held.serverId);
      if (watched === undefined || watched.entry.status !== 'active') continue;
      this.deadlines.cancel(held.serverId);
      Object.assign(watched, { state: 'held', decidedDeadlineMs: held.deadlineMs, decidedAtMs: this.now() });
    }
    this.vmsObservingSinceMs = null;
    this.timers = [
      setInterval(() => void this.renew(), RENEW_MS),
      ...(this.options.vms === undefined
        ? []
        : [setInterval(() => void this.pollVms(), this.options.vms.pollIntervalMs)]),
      setInterval(() => this.sendDueCheckpoints(), CHECKPOINT_SWEEP_MS),
      setInterval(() => void this.readRemoteLeases(), this.options.leaseWriteIntervalMs),
      setInterval(() => void this.reloadRoster(), ROSTER_RELOAD_MS),
      setInterval(() => void this.sweepOpenedFailovers(), OPENED_SWEEP_MS),
    ];
    void this.sweepOpenedFailovers();
    this.logger.info(
      {
        term: term.term,
        observingSince: new Date(term.observingSinceMs).toISOString(),
        watched: this.watched.size,
        openHold: this.openHold?.id ?? null,
      },
      'Liveness detector leading',
    );
  }

  private stepDown(reason: string): void {
    if (this.term === undefined) return;
    this.logger.warn({ term: this.term.term, reason }, 'Liveness detector stepped down');
    this.term = undefined;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.deadlines.clear();
    this.watched.clear();
    this.openHold = undefined;
    this.rosterChanges.clear();
  }

  private async renew(): Promise<void> {
    const term = this.term;
    const connection = this.connection;
    if (term === undefined || connection === undefined) return;
    try {
      if (!(await this.onSession(connection, (session) => renewTerm(session, term.term))))
        this.stepDown(`a newer term replaced term ${term.term}`);
    } catch (error) {
      // The session notices a lost connection by itself; a failed query alone is not a lost lock.
      this.logger.warn({ err: (error as Error).message }, 'Detector term renewal failed');
    }
  }

  // The roster: which servers are watched, from PostgreSQL, with their timeouts and windows.

  private watch(entry: RosterEntry): void {
    const existing = this.watched.get(entry.serverId);
    const watched: Watched = existing ?? {
      entry,
      state: 'watching',
      decidedDeadlineMs: null,
      decidedAtMs: null,
      reportedDisks: undefined,
      disksReportedBroken: false,
      // Spread over one period, so that checkpoints go out at an even rate.
      nextCheckpointAtMs: this.now() + Math.random() * this.options.checkpointPeriodMs,
      lastLateReportMs: null,
    };
    watched.entry = entry;
    this.watched.set(entry.serverId, watched);
    if (entry.status !== 'active') {
      this.deadlines.cancel(entry.serverId);
      return;
    }
    // A changed timeout or maintenance window may move a deadline already reported into the future.
    if (watched.state === 'reported' && this.deadline(watched) > this.now()) watched.state = 'watching';
    if (watched.state === 'watching') this.arm(watched);
    // Heard with broken disks before it was watched (before its monitor started, or this term began).
    const lease = this.leaseOf(entry);
    if (existing === undefined && lease !== undefined) this.reportDiskChange(watched, lease);
  }

  private rosterChanged(serverId: string): void {
    this.rosterChanges.add(serverId);
    if (this.rosterReloadScheduled) return;
    this.rosterReloadScheduled = true;
    // Changes committed together (a failover, a site import) are read in one query.
    setImmediate(() => {
      this.rosterReloadScheduled = false;
      const serverIds = [...this.rosterChanges];
      this.rosterChanges.clear();
      void this.reloadRoster(serverIds);
    });
  }

  private async reloadRoster(serverIds?: string[]): Promise<void> {
    const term = this.term;
    if (term === undefined) return;
    try {
      const entries = await loadRoster(this.db, serverIds);
      if (this.term !== term) return;
      const present = new Set(entries.map((entry) => entry.serverId));
      for (const serverId of serverIds ?? [...this.watched.keys()]) {
        if (present.has(serverId)) continue;
        this.watched.delete(serverId);
        this.deadlines.cancel(serverId);
      }
      for (const entry of entries) this.watch(entry);
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'Detector roster reload failed');
      if (serverIds !== undefined) for (const serverId of serverIds) this.rosterChanges.add(serverId);
    }
  }

  // Deadlines.

  /**
   * What the gateways last heard of a watched server in its current life: a lease last heard before its
   * restore (the disks that broke it, a heartbeat of that time) is not its health now, in memory or stored.
   */
  private leaseOf(entry: RosterEntry): Lease | undefined {
    const lease = this.leases.get(entry.serverId);
    const current =
      lease !== undefined && (entry.leaseValidFromMs === null || lease.lastSeenMs >= entry.leaseValidFromMs);
    return current ? lease : undefined;
  }

  private deadline(watched: Watched): number {
    const { entry } = watched;
    const lease = this.leaseOf(entry);
    return silenceDeadline({
      lastSeenMs: lease?.lastSeenMs ?? null,
      monitoredSinceMs: entry.monitoredSinceMs,
      silenceFromMs: entry.silenceFromMs,
      observingSinceMs: this.term?.observingSinceMs ?? this.now(),
      timeoutMs: entry.timeoutMs,
      maintenanceUntilMs: entry.maintenanceUntilMs,
      ...(entry.source === 'vms' && { vmsOnly: { observingSinceMs: this.vmsObservingSinceMs } }),
    });
  }

  /**
   * While other workers' gateways hear heartbeats too, one of theirs may not have been read yet when a
   * deadline passes: the decision then waits until it would have been.
   */
  private remoteAllowanceMs(): number {
    return this.now() - this.lastRemoteHeardMs < REMOTE_GATEWAY_MEMORY_MS
      ? 2 * this.options.leaseWriteIntervalMs + 250
      : 0;
  }

  private arm(watched: Watched): void {
    const deadlineMs = this.deadline(watched);
    // Nobody can hear it now (its VMS status is not heard): no deadline until it can be.
    if (deadlineMs === Infinity) this.deadlines.cancel(watched.entry.serverId);
    else this.deadlines.schedule(watched.entry.serverId, deadlineMs + this.remoteAllowanceMs());
  }

  private heard(lease: Lease): void {
    if (lease.remoteSeenMs !== null) this.lastRemoteHeardMs = this.now();
    if (this.term === undefined) return;
    const watched = this.watched.get(lease.serverId);
    if (watched === undefined) return;
    if (watched.entry.status === 'broken') {
      // When the heartbeat was heard, by whichever gateway heard it: a lease this worker only learned of
      // (from PostgreSQL, at its start) is no newer for that, and the monitor tells late from old by it.
      this.reportHeardAgain(watched, lease.remoteSeenMs ?? lease.lastSeenMs, lease.disks);
      return;
    }
    if (watched.state !== 'watching') {
      this.logger.info({ serverId: lease.serverId, was: watched.state }, 'Silent Slave heard again');
      watched.state = 'watching';
      watched.decidedDeadlineMs = null;
    }
    this.arm(watched);
    this.reportDiskChange(watched, lease);
  }

  /** Tells the monitor of disk health it has not heard of this term (broken disks, or a change). */
  private reportDiskChange(watched: Watched, lease: Lease): void {
    const term = this.term;
    if (term === undefined) return;
    const disks = brokenLetters(lease.disks).join();
    const changed = watched.reportedDisks === undefined ? disks !== '' : disks !== watched.reportedDisks;
    if (!changed) return;
    watched.reportedDisks = disks;
    if (disks !== '') watched.disksReportedBroken = true;
    this.counts.diskReportsSent += 1;
    const report: LivenessReport = {
      kind: 'disks',
      term: term.term,
      lastSeenMs: lease.lastSeenMs,
      disks: lease.disks,
    };
    // The take-over confirms all disks broken against the lease: it must be written first.
    void this.options
      .writeLeasesNow()
      .then(() =>
        this.deliver(
          watched.entry.serverId,
          report,
          () => this.watched.get(watched.entry.serverId) === watched && watched.reportedDisks === disks,
        ),
      );
  }

  private decide(serverIds: string[]): void {
    const term = this.term;
    if (term === undefined) return;
    const nowMs = this.now();
    const due: { watched: Watched; deadlineMs: number }[] = [];
    for (const serverId of serverIds) {
      const watched = this.watched.get(serverId);
      if (watched === undefined || watched.state !== 'watching' || watched.entry.status !== 'active')
        continue;
      const deadlineMs = this.deadline(watched);
      if (deadlineMs + this.remoteAllowanceMs() > nowMs) {
        this.arm(watched);
        continue;
      }
      due.push({ watched, deadlineMs });
    }
    if (due.length === 0) return;
    const { silent, protectedSlaves } = this.silentCount(nowMs);
    const hold =
      this.openHold !== undefined || isMassFailure(silent, protectedSlaves, this.options.massFailure);
    // Take-overs decided together ask the VMS whether their standbys are up in one read.
    const together = due.length > 1;
    for (const { watched, deadlineMs } of due) {
      Object.assign(watched, { decidedDeadlineMs: deadlineMs, decidedAtMs: nowMs });
      if (hold) {
        watched.state = 'held';
        void this.hold(watched, deadlineMs, { silent, protectedSlaves });
      } else {
        void this.reportDeadline(watched, term, deadlineMs, together);
      }
    }
  }

  /**
   * Takes the recording of a Slave past its deadline over, then tells its monitor (see the top of this file).
   * The take-over's lock is taken first: a take-over of the monitor's for the same failover (a report of it
   * from elsewhere) waits for this one and then finds every step done. Told only afterwards, the monitor's
   * workflow tasks do not compete with the take-over for the machine.
   */
  private async reportDeadline(
    watched: Watched,
    term: DetectorTerm,
    deadlineMs: number,
    together: boolean,
  ): Promise<void> {
    watched.state = 'reported';
    this.counts.deadlinesReported += 1;
    // Counted from the decision, so that take-overs decided together are all counted before one ends.
    const progress: Progress = {
      openingEnded: this.openingsUnderWay.begin(),
      ended: this.takeOversUnderWay.begin(),
    };
    try {
      await this.takeOverAndTell(watched, term, deadlineMs, together, progress);
    } finally {
      progress.openingEnded();
      progress.ended();
    }
  }

  /** reportDeadline's work, which says when its opening and its take-over have ended (`progress`). */
  private async takeOverAndTell(
    watched: Watched,
    term: DetectorTerm,
    deadlineMs: number,
    together: boolean,
    progress: Progress,
  ): Promise<void> {
    const { ended } = progress;
    const lastSeenMs = this.leaseOf(watched.entry)?.lastSeenMs ?? null;
    const stillWanted = () => watched.state === 'reported' && watched.decidedDeadlineMs === deadlineMs;
    const report = { kind: 'deadline', term: term.term, lastSeenMs, deadlineMs } as const;
    const slaveId = watched.entry.serverId;
    const stillWatched = () => this.watched.get(slaveId) === watched;
    const failoverId = failoverWorkflowId(this.options.site, slaveId, deadlineMs);
    const session = this.connection;
    const locks = this.takeOverLocks;
    // A Slave whose disks were reported broken this term may be failing over for that, under its monitor's id.
    const locked = !watched.disksReportedBroken && locks !== undefined && (await locks.lock(failoverId));
    if (!locked || locks === undefined) {
      // Its monitor takes it over alone.
      progress.openingEnded();
      ended();
      await this.deliver(slaveId, report, () => stillWatched() && stillWanted());
      return;
    }
    await this.takeOversHere.track(failoverId, async () => {
      try {
        if (!stillWanted() || this.term !== term) return undefined;
        const failover = { failoverId, slaveId, reason: 'heartbeat-timeout', deadlineMs } as const;
        const { opened, takeOver } = await this.takeOver(
          term,
          session,
          { ...failover, claim: { term: term.term, lastSeenMs, deadlineMs } },
          together,
          progress.openingEnded,
        );
        ended();
        // Told whatever came of it: the monitor's own take-over confirms the same decision (and counts a
        // refusal), or goes on from the last step done. Once its take-over is done, the monitor is told when
        // no other take-over is under way: what the monitor starts then (its workflow task, the failover
        // workflow, plugin reinstalls) would share the machine with the take-overs still restoring recording.
        if (takeOver !== undefined) await this.takeOversUnderWay.idle(TELL_AFTER_TAKE_OVERS_MAX_MS);
        if (opened) await this.tellOpened(failover, report, takeOver);
        else await this.deliver(slaveId, report, stillWatched);
        return takeOver;
      } finally {
        if (this.connection === session) locks.unlock(failoverId);
      }
    });
  }

  /** Opens the failover and, if this call opened it, runs its take-over while this term and session last. */
  private async takeOver(
    term: DetectorTerm,
    session: Client | undefined,
    start: FailoverStart & { claim: SilenceClaim },
    together: boolean,
    openingEnded: () => void,
  ): Promise<{ opened: boolean; takeOver?: TakeOver }> {
    const { failoverId, slaveId } = start;
    let opened = false;
    try {
      const opening = await this.openings.run(start).finally(openingEnded);
      if ('refused' in opening) throw opening.refused;
      const { plan, openedNow } = opening;
      opened = true;
      this.counts.failoversOpened += 1;
      this.logger.info({ serverId: slaveId, failoverId }, 'Failover opened at the deadline');
      // Opened by another run (a take-over of its monitor's): that run goes on alone.
      if (!openedNow) return { opened };
      const owned = () => this.connection === session && this.term === term;
      // Every Slave decided broken is in Broken recorders before any take-over competes with its opening.
      await this.openingsUnderWay.idle(OPENINGS_FIRST_MAX_MS);
      const takeOver = await this.takeOversInFlight.run(() =>
        this.options.takeOver.takeOverFrom(plan, { stillOwned: owned, together }),
      );
      this.counts.takeOversRun += 1;
      this.logger.info(
        {
          serverId: slaveId,
          failoverId,
          failoverServerId: takeOver.claim.claimed ? takeOver.claim.serverId : null,
        },
        'Recording taken over at the deadline',
      );
      return { opened, takeOver };
    } catch (error) {
      // Refused (heard meanwhile, a newer term, failing over already), not reached or not finished.
      const refused = error instanceof DomainError || error instanceof TakeOverLeft;
      this.logger[refused ? 'info' : 'warn'](
        { serverId: slaveId, failoverId, err: (error as Error).message },
        'Take-over at the deadline not done: the monitor goes on',
      );
      return { opened };
    }
  }

  /**
   * Tells the monitor of a failover the detector opened, and records it told. With no monitor running (it
   * was stopped meanwhile) the failover workflow is started in its place, to finish what was begun. Until
   * this is recorded, every term tells it again (`tellUntoldFailovers`): a failover the detector opened never
   * stays with nobody to finish it.
   */
  private async tellOpened(
    failover: OpenedFailover,
    report: LivenessReport & { kind: 'deadline' },
    takeOver?: TakeOver,
  ): Promise<void> {
    const { failoverId, slaveId } = failover;
    if (this.telling.has(failoverId)) return;
    this.telling.add(failoverId);
    try {
      const startInstead = async (): Promise<boolean> => {
        const outcome = await this.startFailoverWorkflow(failover, takeOver, {
          term: report.term,
          lastSeenMs: report.lastSeenMs,
          deadlineMs: failover.deadlineMs,
        });
        if (outcome === 'unavailable') return false;
        this.logger.warn(
          { serverId: slaveId, failoverId, outcome },
          'No monitor to tell: failover workflow started',
        );
        return true;
      };
      if (!(await this.deliver(slaveId, report, () => true, startInstead))) return;
      await recordMonitorsTold(this.db, [failoverId]).catch((error: unknown) => {
        this.logger.warn(
          { failoverId, err: (error as Error).message },
          'Monitor told, not recorded: told again later',
        );
      });
    } finally {
      this.telling.delete(failoverId);
    }
  }

  /** Failovers left with nobody to finish them, found in PostgreSQL: each is handed to who finishes it. */
  private async sweepOpenedFailovers(): Promise<void> {
    const term = this.term;
    if (term === undefined) return;
    await this.tellUntoldFailovers(term);
    await this.finishAbandonedFailovers(term);
  }

  /** Failovers opened by a detector whose monitor was not told (the detector stopped, or lost its term, between). */
  private async tellUntoldFailovers(term: DetectorTerm): Promise<void> {
    let untold: OpenedFailover[];
    try {
      untold = await untoldFailovers(this.db);
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'Untold failovers not read: read again later');
      return;
    }
    for (const failover of untold) {
      if (this.term !== term) return;
      // Its take-over is under way in this detector, which tells it once it ends.
      if (this.takeOversHere.runningFor(failover.failoverId) !== undefined) continue;
      this.logger.warn(
        { serverId: failover.slaveId, failoverId: failover.failoverId },
        'Untold failover: telling its monitor',
      );
      void this.tellOpened(failover, {
        kind: 'deadline',
        term: term.term,
        lastSeenMs: null,
        deadlineMs: failover.deadlineMs,
      });
    }
  }

  /**
   * Failovers whose monitor was told of them, or opened them itself, and ended before it started their failover
   * workflow (terminated by hand in between): nobody else would finish them. Their failover workflow is started
   * as the monitor would have, from the steps done. A monitor still running starts it itself.
   */
  private async finishAbandonedFailovers(term: DetectorTerm): Promise<void> {
    let told: OpenedFailover[];
    try {
      told = await toldOpenFailovers(this.db);
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'Open failovers not read: read again later');
      return;
    }
    for (const failover of told) {
      const { failoverId, slaveId } = failover;
      if (this.term !== term) return;
      if (this.takeOversHere.runningFor(failoverId) !== undefined || this.telling.has(failoverId)) continue;
      // Unknown (Temporal not answering) counts as started or running: asked again at the next sweep.
      if ((await this.reporter.failoverWorkflowStarted(failoverId)) !== false) continue;
      if ((await this.reporter.monitorRunning(slaveId)) !== false) continue;
      const outcome = await this.startFailoverWorkflow(failover);
      if (outcome === 'started') {
        this.logger.warn({ serverId: slaveId, failoverId }, 'Abandoned failover: failover workflow started');
      }
    }
  }

  /**
   * Starts the failover workflow of an open failover whose monitor cannot start it. It goes on from the
   * take-over's result: this run's, or (told in a later term, or abandoned) what PostgreSQL says was committed;
   * without one it takes the steps left, each finding itself done if it was.
   */
  private async startFailoverWorkflow(
    failover: OpenedFailover,
    takeOver?: TakeOver,
    claim?: SilenceClaim,
  ): Promise<FailoverStartOutcome> {
    const done = takeOver ?? (await this.committedTakeOverOf(failover));
    return this.reporter.startFailover(failover.failoverId, {
      slaveId: failover.slaveId,
      reason: failover.reason,
      deadlineMs: failover.deadlineMs,
      ...(claim !== undefined && { claim }),
      ...(done !== undefined && { takeOver: done }),
    });
  }

  private async committedTakeOverOf(failover: OpenedFailover): Promise<TakeOver | undefined> {
    try {
      return await this.options.takeOver.committedTakeOver(failover);
    } catch (error) {
      this.logger.warn(
        { failoverId: failover.failoverId, err: (error as Error).message },
        'Committed take-over not read: the failover workflow takes the steps',
      );
      return undefined;
    }
  }

  /** Protected Slaves silent now: past their deadline, decided lately, or missing two of their heartbeats. */
  private silentCount(nowMs: number): { silent: number; protectedSlaves: number } {
    let silent = 0;
    let protectedSlaves = 0;
    for (const watched of this.watched.values()) {
      const { entry } = watched;
      if (entry.status !== 'active') continue;
      protectedSlaves += 1;
      if (entry.maintenanceUntilMs !== null && entry.maintenanceUntilMs > nowMs) continue;
      const lease = this.leaseOf(entry);
      const decidedLately =
        watched.state === 'held' ||
        (watched.state === 'reported' && nowMs - (watched.decidedAtMs ?? 0) < entry.timeoutMs);
      const silentForMs = lease === undefined ? 0 : nowMs - lease.lastSeenMs;
      if (
        decidedLately ||
        this.deadline(watched) <= nowMs ||
        missedTwoHeartbeats(silentForMs, lease?.intervalMs ?? null)
      ) {
        silent += 1;
      }
    }
    return { silent, protectedSlaves };
  }

  // Mass-failure holds.

  private async hold(
    watched: Watched,
    deadlineMs: number,
    counts: { silent: number; protectedSlaves: number },
  ): Promise<void> {
    const term = this.term;
    if (term === undefined) return;
    const holdId = (this.openHold ??= { id: newHoldId(this.now()) }).id;
    this.counts.failoversHeld += 1;
    const serverId = watched.entry.serverId;
    this.logger.warn({ serverId, holdId, ...counts }, 'Failover held: many Slaves silent at once');
    for (
      let delayMs = RETRY_MIN_MS;
      this.term === term && watched.state === 'held';
      delayMs = nextDelay(delayMs)
    ) {
      try {
        const storedId = await holdFailover(this.db, { newHoldId: holdId, serverId, deadlineMs, ...counts });
        if (this.openHold !== undefined) this.openHold.id = storedId;
        break;
      } catch (error) {
        this.logger.warn(
          { serverId, err: (error as Error).message },
          'Held failover not recorded: trying again',
        );
        await delay(delayMs);
      }
    }
    await this.deliver(
      serverId,
      { kind: 'held', term: term.term, holdId: this.openHold?.id ?? holdId, deadlineMs },
      () => this.watched.get(serverId) === watched && watched.state === 'held',
    );
  }

  private async holdDecided(): Promise<void> {
    const term = this.term;
    const openHold = this.openHold;
    if (term === undefined || openHold === undefined) return;
    const hold = await findHold(this.db, openHold.id).catch(() => undefined);
    if (hold === undefined || hold.status === 'open' || this.term !== term) return;
    this.openHold = undefined;
    this.logger.warn(
      { holdId: hold.id, decision: hold.status, by: hold.decidedBy },
      'Mass-failure hold decided',
    );
    const held = hold.slaves
      .map(({ serverId }) => this.watched.get(serverId))
      .filter((watched): watched is Watched => watched?.state === 'held');
    for (const watched of held) {
      if (hold.status === 'dismissed') {
        watched.state = 'dismissed';
        continue;
      }
      const deadlineMs = watched.decidedDeadlineMs ?? this.deadline(watched);
      watched.decidedDeadlineMs = deadlineMs;
      void this.reportDeadline(watched, term, deadlineMs, held.length > 1);
    }
  }

  // Reports to monitors.

  private sendDueCheckpoints(): void {
    const term = this.term;
    if (term === undefined) return;
    const nowMs = this.now();
    for (const watched of this.watched.values()) {
      if (watched.entry.status !== 'active' || watched.state !== 'watching') continue;
      if (watched.nextCheckpointAtMs > nowMs) continue;
      watched.nextCheckpointAtMs = nowMs + this.options.checkpointPeriodMs;
      const lease = this.leaseOf(watched.entry);
      const report: LivenessReport = {
        kind: 'checkpoint',
        term: term.term,
        lastSeenMs: lease?.lastSeenMs ?? null,
        disks: lease?.disks ?? [],
      };
      void this.checkpointsInFlight.run(async () => {
        const outcome = await this.reporter.report(watched.entry.serverId, report);
        if (outcome === 'delivered') this.counts.checkpointsSent += 1;
        else {
          this.counts.reportFailures += 1;
          watched.nextCheckpointAtMs = Math.min(
            watched.nextCheckpointAtMs,
            this.now() + NOT_RUNNING_RETRY_MS,
          );
        }
      });
    }
  }

  /** A broken Slave heard again (a late heartbeat, or the VMS reaching it): its monitor fences it if it must. */
  private reportHeardAgain(watched: Watched, lastSeenMs: number, disks: DiskHealth[]): void {
    const term = this.term;
    if (term === undefined) return;
    const nowMs = this.now();
    if (watched.lastLateReportMs !== null && nowMs - watched.lastLateReportMs < LATE_REPORT_EVERY_MS) return;
    watched.lastLateReportMs = nowMs;
    void this.checkpointsInFlight.run(() =>
      this.reporter.report(watched.entry.serverId, {
        kind: 'checkpoint',
        term: term.term,
        lastSeenMs,
        disks,
      }),
    );
  }

  /**
   * Sends a report until it is delivered (true), no longer wanted, or this term ends. With no monitor running,
   * `instead` (when given) may do what the monitor would have: the report then counts as delivered.
   */
  private async deliver(
    serverId: string,
    report: LivenessReport,
    wanted: () => boolean,
    instead?: () => Promise<boolean>,
  ): Promise<boolean> {
    for (let delayMs = RETRY_MIN_MS; ; delayMs = nextDelay(delayMs)) {
      if (this.term?.term !== report.term || !wanted()) return false;
      const outcome = await this.reporter.report(serverId, report);
      if (outcome === 'delivered') return true;
      if (outcome === 'monitor-not-running' && instead !== undefined && (await instead())) return true;
      this.counts.reportFailures += 1;
      if (delayMs === RETRY_MIN_MS) {
        this.logger.warn(
          { serverId, kind: report.kind, outcome },
          'Liveness report not delivered: trying again',
        );
      }
      await delay(outcome === 'monitor-not-running' ? NOT_RUNNING_RETRY_MS : delayMs);
    }
  }

  // The VMS's server status: a heartbeat of every server it reaches that is watched through it.

  private async pollVms(): Promise<void> {
    const term = this.term;
    const vms = this.options.vms;
    if (term === undefined || vms === undefined || this.polling) return;
    const watchedThroughVms = [...this.watched.values()].filter(
      (watched) => watched.entry.source !== 'agent',
    );
    // Broken Slaves heard by their agent only, whose fence the VMS could not deliver: the agent may be dead
    // while the recorder records on, so the VMS reaching it again (server-up) is when to fence it.
    const fencesPending = [...this.watched.values()].filter(
      (watched) =>
        watched.entry.source === 'agent' && watched.entry.status === 'broken' && watched.entry.fencePending,
    );
    if (watchedThroughVms.length === 0 && fencesPending.length === 0) return;
    this.polling = true;
    // A status that does not come back within two intervals is not heard, whether it fails later or not.
    const watchdog = setTimeout(() => {
      if (this.term === term && this.vmsObservingSinceMs !== null) {
        this.logger.warn({}, 'VMS status not heard: servers watched through it are not judged until it is');
        void this.setVmsObservation(term, null);
      }
    }, 2 * vms.pollIntervalMs);
    try {
      let statuses;
      try {
        statuses =
          watchedThroughVms.length > 0
            ? await vms.controlPlane.serverStatus()
            : // Only the Slaves whose fence is pending, in one call: a site of 10,000 servers with one broken
              // Slave down for days is not read whole every second.
              await vms.controlPlane.serverStatusesOf(fencesPending.map((watched) => watched.entry.serverId));
      } catch (error) {
        if (this.vmsObservingSinceMs !== null) {
          this.logger.warn(
            { err: (error as Error).message },
            'VMS status not heard: servers watched through it are not judged until it is',
          );
          await this.setVmsObservation(term, null);
        }
        return;
      }
      if (this.term !== term) return;
      const nowMs = this.now();
      if (this.vmsObservingSinceMs === null) {
        this.logger.info(
          { servers: watchedThroughVms.length },
          'VMS status heard: servers watched through it are judged from now',
        );
        await this.setVmsObservation(term, nowMs);
      }
      const reachable = new Map(
        statuses.filter((status) => status.reachable).map((status) => [status.serverId, status]),
      );
      for (const watched of watchedThroughVms) {
        const status = reachable.get(watched.entry.serverId);
        if (status === undefined) continue;
        this.leases.record(watched.entry.serverId, {
          atMs: nowMs,
          sentAtMs: status.observedAt.getTime(),
          disks: status.disks,
        });
      }
      for (const watched of fencesPending) {
        const status = reachable.get(watched.entry.serverId);
        if (status !== undefined) this.reportHeardAgain(watched, nowMs, status.disks);
      }
    } finally {
      clearTimeout(watchdog);
      this.polling = false;
    }
  }

  private async setVmsObservation(term: DetectorTerm, sinceMs: number | null): Promise<void> {
    this.vmsObservingSinceMs = sinceMs;
    // Deadlines of servers heard only through the VMS are suspended or given their grace.
    for (const watched of this.watched.values()) {
      if (
        watched.entry.source === 'vms' &&
        watched.state === 'watching' &&
        watched.entry.status === 'active'
      ) {
        this.arm(watched);
      }
    }
    const connection = this.connection;
    if (connection === undefined) return;
    await this.onSession(connection, (session) => recordVmsObservation(session, term.term, sinceMs)).catch(
      (error: unknown) => {
        this.logger.warn({ err: (error as Error).message }, 'VMS observation not recorded');
      },
    );
  }

  // Leases heard by other workers' gateways.

  private async readRemoteLeases(): Promise<void> {
    if (this.term === undefined) return;
    try {
      const remote = await leasesWrittenByOthers(this.db, this.options.instance, REMOTE_LOOK_BACK_MS);
      const nowMs = this.now();
      for (const lease of remote) this.leases.mergeRemote(lease, nowMs);
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, "Detector could not read other gateways' leases");
    }
  }
}

const nextDelay = (delayMs: number): number => Math.min(RETRY_MAX_MS, delayMs * 2);

const delay = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });

const newHoldId = (nowMs: number): string =>
  `hold-${new Date(nowMs).toISOString().replace(/[-:.]/g, '').slice(0, 15)}Z-${Math.random().toString(36).slice(2, 6)}`;
