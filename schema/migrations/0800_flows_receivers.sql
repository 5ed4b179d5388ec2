-- Issue 19, who receives the traffic: with `collect --receivers`, each TCP/UDP flow row names
-- the process the kernel last saw read the local socket its packets were delivered to, when the
-- export was cut (collector/receivers.go). Zero and '' when unknown (not delivered to a local
-- socket, not read yet, another protocol) or when the collector runs without --receivers.
-- recv_pid: process id in the host's pid namespace; recv_comm: the reading thread's command;
-- recv_cgroup_id: cgroup v2 id (the inode of its directory); recv_cgroup: its path under the
-- cgroup2 mount; recv_container_id / recv_pod_uid: read from that path (docker-, cri-containerd-,
-- crio-, libpod-<id>.scope; kubepods-...-pod<uid>.slice), '' when it names none.
ALTER TABLE {database}.flows
    ADD COLUMN IF NOT EXISTS recv_pid UInt32 CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS recv_comm LowCardinality(String),
    ADD COLUMN IF NOT EXISTS recv_cgroup_id UInt64 CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS recv_cgroup LowCardinality(String),
    ADD COLUMN IF NOT EXISTS recv_container_id LowCardinality(String),
    ADD COLUMN IF NOT EXISTS recv_pod_uid LowCardinality(String);
