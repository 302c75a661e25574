/**
 * The VMS control plane: the calls the orchestrator makes on the Mirasys system itself. Every call is
 * idempotent (a retried activity repeats it) and carries the failover id as its request id.
 */
export interface VmsControlPlane {
  /** Turns a standby failover server into the active recorder in place of a broken Slave. */
  promoteToRecorder(request: {
    requestId: string;
    serverId: string;
    replacesServerId: string;
  }): Promise<void>;
  /** Binds IP cameras to a recording server. */
  rebindCameras(request: { requestId: string; cameraIds: string[]; toServerId: string }): Promise<void>;
  /** Installs a Spotter plugin (ANPR+, Activity Map, ...) on a server. */
  installPlugin(request: { requestId: string; serverId: string; plugin: string }): Promise<void>;
  /** Whether the server's services answer. */
  isServerUp(serverId: string): Promise<boolean>;
}

/** A call the VMS refused or could not complete; worth retrying. */
export class VmsCallFailed extends Error {
  override readonly name = 'VmsCallFailed';
}
