/** Site descriptions for tests, in the format of `vms site import`. */

export const systemDrive = { letter: 'C', material: false };

export interface SlaveSpec {
  id: string;
  drives?: (string | { letter: string; material: boolean })[];
  timeout?: string;
  protected?: boolean;
  ipCameras?: number;
  analogCameras?: number;
  plugins?: string[];
  /** How it is heard: its agent (default), the VMS's server status, or both. */
  liveness?: 'agent' | 'vms' | 'both';
}

export const slave = ({
  id,
  drives = [systemDrive, 'D', 'E'],
  timeout = '2s',
  ipCameras = 2,
  analogCameras = 0,
  plugins = [],
  liveness,
  ...rest
}: SlaveSpec) => ({
  id,
  hostname: `${id}.site.local`,
  role: 'slave',
  drives,
  protected: rest.protected ?? true,
  failoverTimeout: timeout,
  ...(liveness !== undefined && { liveness }),
  cameras: [
    ...Array.from({ length: ipCameras }, (_, index) => ({ id: `${id}-ip-${index + 1}`, kind: 'ip' })),
    ...Array.from({ length: analogCameras }, (_, index) => ({
      id: `${id}-analog-${index + 1}`,
      kind: 'analog',
    })),
  ],
  plugins,
});

export const standby = (
  id: string,
  drives: (string | { letter: string; material: boolean })[] = [systemDrive, 'D', 'E'],
) => ({
  id,
  hostname: `${id}.site.local`,
  role: 'failover',
  drives,
});

export const master = { id: 'master', hostname: 'master.site.local', role: 'master', drives: [systemDrive] };

export const site = (...servers: object[]) => ({ servers: [master, ...servers] });
