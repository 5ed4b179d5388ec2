-- Issue 18: talkers_1m is rolled up from flows_1m's rows instead of from every packet. Half of
-- what the views cost ClickHouse at insert is their queries, and most of that is three GROUP BYs
-- over every packet of a batch with wide keys: flows, talkers, traffic (BENCHMARKS.md, "where the
-- views' price goes"). Talkers' key (minute, host, iface, src_addr) is coarser than flows', and
-- what it holds is sums and uniq states of dst_port and dst_addr, both flows keys: the same
-- rollup comes from the batch's flow rows (~12k per 100k packets on the bench mix), which the
-- flows view has just grouped anyway. Where every packet is its own flow (a scan), the view
-- aggregates as many rows as before.
--
-- Exact: sums of sums are the sums; uniq's state depends only on the set of values it was given,
-- and the same dst_port and dst_addr values reach it from the flow rows as from the packets
-- (TestRollupsEqualPackets); dst_ports still counts TCP and UDP ports only (ip_proto is a flows
-- key). A cascaded view's block is deduplicated as the hour views' already are (0101): a replayed
-- packets INSERT is dropped in flows_1m, with what it cascades.
--
-- Traffic stays rolled up from packets: its vlan_id and ip_version are not flows keys, and a
-- key column added to flows_1m's sorting key could not be re-applied (ClickHouse refuses an
-- existing column added to a sorting key: TestMigrateIdempotent re-applies every file).
-- (0903 then did it: the runner leaves out a MODIFY ORDER BY the table's key already satisfies.)
--
-- As in 0600, the view is dropped and created again (ALTER TABLE ... MODIFY QUERY broke
-- exactly-once on the sharded cluster): apply it with the ingesters stopped, or an INSERT in
-- between misses the talkers rollup.

-- dst_ports: the ports of TCP and UDP flows only, as over packets (other flows have port 0).
DROP VIEW IF EXISTS {database}.talkers_1m_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.talkers_1m_mv TO {database}.talkers_1m AS
SELECT
    minute,
    host,
    iface,
    src_addr,
    sum(packets) AS packets,
    sum(bytes) AS bytes,
    uniqStateIf(dst_port, ip_proto IN (6, 17)) AS dst_ports,
    uniqState(dst_addr) AS dst_addrs
FROM {database}.flows_1m
GROUP BY minute, host, iface, src_addr;
