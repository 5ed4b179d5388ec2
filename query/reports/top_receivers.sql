-- Local processes receiving the most traffic (flows exported with collect --receivers).
-- One row per receiving process as the flows name it (host, pid, command, cgroup, container,
-- pod); packets and bytes are the kernel's exact flow counts; the local (destination) ports it
-- received on: how many, and the 16 lowest. '(none)': TCP/UDP and other flows
-- no local process was seen reading (forwarded, refused, not read yet, or --receivers off).
SELECT
    host,
    if(recv_pid = 0, '(none)', recv_comm) AS command,
    recv_pid AS pid,
    recv_cgroup AS cgroup,
    recv_container_id AS container_id,
    recv_pod_uid AS pod_uid,
    sum(packets) AS packets,
    sum(bytes) AS bytes,
    uniqExact(src_addr, src_port, dst_addr, dst_port, ip_proto) AS flows,
    uniqExact(dst_port) AS local_port_count,
    arraySlice(arraySort(groupUniqArray(dst_port)), 1, 16) AS lowest_local_ports
FROM flows
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)}
GROUP BY host, recv_pid, recv_comm, recv_cgroup, recv_container_id, recv_pod_uid
ORDER BY bytes DESC
LIMIT {limit:UInt32}
