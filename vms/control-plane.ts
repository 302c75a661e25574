/**
 * The VMS control plane: the calls the orchestrator makes on the Mirasys system itself. Every mutating call
 * carries a request id (the failover id) and is idempotent: repeated with the same request id it changes
 * nothing more and answers 'already-applied' (a retried activity repeats it). docs/vms-bridge.md says what
 * an implementation must guarantee; vms/http-bridge.ts implements it over HTTP, vms/simulator.ts in-process.
 */
import type { DiskHealth } from '../domain/site';

/** 'applied': this call made the change. 'already-applied': it was made before (by this request or another). */
export type VmsOutcome = 'applied' | 'already-applied';

/** The VMS's role of a server: the Master, a recording server, or a passive standby failover server. */
export type VmsServerRole = 'master' | 'recorder' | 'standby';

/** One server as the VMS sees it at `observedAt`. */
export interface VmsServerStatus {
  serverId: string;
  role: VmsServerRole;
  /** Whether the VMS reaches the server's services. */
  reachable: boolean;
  /** Whether its recording service runs; null when the server is not reachable (the VMS cannot know). */
  recording: boolean | null;
  /** The last disk health the server reported (every drive letter), empty when it never reported any. */
  disks: DiskHealth[];
  observedAt: Date;
}

/** Progress of a running plugin install, 0 to 100, told to an optional callback (an activity heartbeats it). */
export type InstallProgress = (percent: number) => void;

export interface VmsControlPlane {
  /** Turns a standby failover server into the active recorder in place of a broken Slave. */
  promoteToRecorder(request: {
    requestId: string;
    serverId: string;
    replacesServerId: string;
  }): Promise<VmsOutcome>;
  /**
   * Stops a recorder recording and streaming (the broken Slave, before its cameras move), so that no camera
   * is recorded by two servers. Rejects with VmsUnavailable 'server-unreachable' when the VMS cannot reach it.
   */
  fenceRecorder(request: { requestId: string; serverId: string }): Promise<VmsOutcome>;
  /** Makes a recorder a standby failover server (a repaired server, restored). */
  demoteToStandby(request: { requestId: string; serverId: string }): Promise<VmsOutcome>;
  /** Binds IP cameras to a recording server, which then records them. */
  rebindCameras(request: { requestId: string; cameraIds: string[]; toServerId: string }): Promise<VmsOutcome>;
  /**
   * Installs a Spotter plugin (ANPR+, Activity Map, ...) on a server: resolves once it is installed, rejects
   * with PluginInstallFailed when the install failed. Repeated with the same request id while the install
   * runs, it waits for that install: two installs of one plugin on one server never overlap.
   */
  installPlugin(
    request: { requestId: string; serverId: string; plugin: string },
    onProgress?: InstallProgress,
  ): Promise<VmsOutcome>;
  /** Every server of the site, in one call. */
  serverStatus(): Promise<VmsServerStatus[]>;
  /** One server's status; rejects with VmsRejected 'unknown-server' for a server the VMS does not have. */
  serverStatusOf(serverId: string): Promise<VmsServerStatus>;
  /** The status of the servers named, in one call; a server the VMS does not have is left out. */
  serverStatusesOf(serverIds: readonly string[]): Promise<VmsServerStatus[]>;
  /** Whether the server's services answer. */
  isServerUp(serverId: string): Promise<boolean>;
}

/** A call the VMS could not complete; worth retrying. */
export class VmsCallFailed extends Error {
  override readonly name: string = 'VmsCallFailed';
}

/**
 * The VMS, its bridge or the server a call is about did not answer (5xx, timeout, refused connection,
 * unreachable server): retry. `code` says which (docs/vms-bridge.md), e.g. 'server-unreachable', 'timeout'.
 */
export class VmsUnavailable extends VmsCallFailed {
  override readonly name = 'VmsUnavailable';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A plugin install ran and failed (the installer's message); a new attempt may succeed. */
export class PluginInstallFailed extends VmsCallFailed {
  override readonly name = 'PluginInstallFailed';
}

/**
 * The VMS refused the call as it stands (a 4xx: unknown server, not a standby, malformed request, refused
 * token): the same call can never succeed, so it is not retried. `code` says why (docs/vms-bridge.md).
 */
export class VmsRejected extends Error {
  override readonly name = 'VmsRejected';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
