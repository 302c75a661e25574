-- A server's cameras and recordings, found without reading those of the whole site (10,000 recorders hold
-- 40,000 cameras): a promotion records the cameras bound to it, a fence or a demotion ends its recordings.
CREATE INDEX camera_bindings_by_server ON vms_sim.camera_bindings (server_id);
CREATE INDEX recordings_by_server ON vms_sim.recordings (server_id);
