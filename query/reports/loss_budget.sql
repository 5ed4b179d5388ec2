-- Loss budget per minute and host: packets seen, and the shares stored, sampled, only in flows, lost.
--
-- Every packet the BPF program runs on ends in exactly one of four tiers, from most to least
-- detail. The four counts add up to seen, and the four shares to 100:
--
--   seen         packets the BPF program ran on: the increase of collector_stats.kernel_seen.
--   stored       packets that have their own row in packets: count().
--   sampled      packets with no row of their own but counted by a stored row's sample_rate
--                (adaptive sampling): sum(sample_rate) - count(). Any report that scales by
--                sample_rate counts them.
--   flows_only   packets with no row in packets but counted in the exact per-flow counters of
--                the flows table: least(flow packets, seen) - sum(sample_rate), but at least 0.
--                This assumes every packet that has a packets row is also in a flow, so it is a
--                lower bound: loss is never understated.
--   unaccounted  packets in neither table: seen - stored - sampled - flows_only. Lost to the
--                per-packet path and to the flow path (flow table full, flows not
--                exported or not ingested, or flows disabled).
--
-- Why per-packet records were lost (increases of the collector_stats counters; each lost record
-- also takes the sampled-out packets its sample_rate stood for):
--
--   ring_full    kernel: the ring buffer to the collector had no room (kernel_ring_full)
--   malformed    collector: ring samples that were not a valid record (samples_malformed)
--   shed         collector: the producer's buffer was full, frame dropped (records_shed)
--   failed       Kafka: produce failed (records_failed)
--   restart_lost collector: records a killed collector process had read from the ring but that
--                never reached Kafka, counted by the process that continued its pinned run
--                (records_lost_restart, read from raw)
--   discarded    collector: records left in the ring of a pinned program that a collector of
--                another build or settings replaced (records_discarded, read from raw)
--   ingest_lost  ingester: records Kafka acknowledged (records_acked) minus stored rows, e.g.
--                frames sent to dead_letters, or deleted by Kafka's retention before they were
--                ingested (next)
--
-- Kafka records lost between the collectors and the ingester (ingest_gaps):
--
--   kafka_expired_records  Kafka records (frames of many packets, or stats and flow messages)
--                that the topic's retention deleted before the ingester read them: an outage
--                longer than the retention. What they held is unknown, even their hosts, so
--                they are counted on rows of their own, with host '' and in the minute the
--                ingester found the gap; their packets are in their hosts' ingest_lost. A gap
--                reported twice (after a crash) counts once: only offsets no earlier gap of the
--                same topic instance and partition covered.
--
-- Why packets are missing from the flows (increase of a collector_stats counter):
--
--   flow_failed  kernel: packets of new flows the full flow table refused (kernel_flow_failed,
--                read from raw): in no flow; in unaccounted too unless a packets row holds them
--
-- Seen by packetlake, dropped by the kernel afterwards (table drops, bpf/drops.c; by the minute
-- of export). Not a loss of packetlake's: the packets are in seen and stored like any other;
-- these say the host itself never delivered them, and why:
--
--   kernel_dropped           packets received on the observed interface that the kernel then
--                            dropped (observed = 1), including those counted as MAP_FULL
--   kernel_drop_reasons      the same by reason, most first: 'NO_SOCKET 40, NETFILTER_DROP 30'
--                            (no socket / netfilter / checksum (UDP_CSUM, TCP_CSUM) / backlog
--                            (SOCKET_RCVBUFF, SOCKET_BACKLOG, TCP_LISTEN_OVERFLOW) ...: the names
--                            of the kernel's enum skb_drop_reason)
--   kernel_dropped_elsewhere drops on the host of packets packetlake did not see (another
--                            interface, or made on the host): observed = 0
--
-- Counters: collector_stats rows are cumulative per collector run (collector_id) from zero at
-- the run's start. A pinned run goes on across collector processes (a crash, an upgrade) with
-- the same collector_id and its counters going on from where they were: no reset to handle. An increase is the difference to the previous report of the same host,
-- interface and run, or the value itself for a run's first report, so a restart (a new run)
-- loses nothing and never subtracts across runs. A run that started before {since} takes its
-- last report before {since} as its baseline (the run's earlier reports are read for that);
-- should the counters of one run ever go down, the new value counts as the increase. A host
-- with several interfaces sums them.
--
-- Minutes: counters fall in the minute of the report that carries them (every 5 s by default),
-- packets rows in the minute of their capture, flows rows in the minute of their export. A
-- minute's edges can therefore be off by one report interval: a minute may show a share over
-- 100 and unaccounted or ingest_lost below 0, balanced by its neighbour; over many minutes
-- this evens out. Shares are NULL when seen is 0 (no collector_stats for the host: is its stats
-- topic ingested?).
SELECT
    minute,
    host,
    seen,
    stored,
    toUInt64(represented - stored) AS sampled,
    toUInt64(greatest(toInt64(least(flow_packets, seen)) - toInt64(represented), 0)) AS flows_only,
    toInt64(seen) - toInt64(represented) - toInt64(flows_only) AS unaccounted,
    round(100 * stored / nullIf(seen, 0), 2) AS stored_pct,
    round(100 * sampled / nullIf(seen, 0), 2) AS sampled_pct,
    round(100 * flows_only / nullIf(seen, 0), 2) AS flows_only_pct,
    round(100 * unaccounted / nullIf(seen, 0), 2) AS unaccounted_pct,
    ring_full,
    malformed,
    shed,
    failed,
    restart_lost,
    discarded,
    toInt64(acked) - toInt64(stored) AS ingest_lost,
    flow_failed,
    kafka_expired AS kafka_expired_records,
    kernel_dropped,
    kernel_drop_reasons,
    kernel_dropped_elsewhere
FROM
(
    SELECT
        minute,
        host,
        sum(d_seen) AS seen,
        sum(n_stored) AS stored,
        sum(n_represented) AS represented,
        sum(n_flow_packets) AS flow_packets,
        sum(d_ring_full) AS ring_full,
        sum(d_malformed) AS malformed,
        sum(d_shed) AS shed,
        sum(d_failed) AS failed,
        sum(d_restart_lost) AS restart_lost,
        sum(d_discarded) AS discarded,
        sum(d_acked) AS acked,
        sum(d_flow_failed) AS flow_failed,
        sum(n_expired) AS kafka_expired
    FROM
    (
        -- Counter increases, by the minute of the report: the counter minus its value in the
        -- previous report of the run (0 before the run's first report, or if it went back).
        SELECT
            toStartOfMinute(toDateTime(ts)) AS minute,
            host,
            toUInt64(seen - if(seen >= seen_before, seen_before, 0)) AS d_seen,
            toUInt64(0) AS n_stored,
            toUInt64(0) AS n_represented,
            toUInt64(0) AS n_flow_packets,
            toUInt64(ring_full - if(ring_full >= ring_full_before, ring_full_before, 0)) AS d_ring_full,
            toUInt64(malformed - if(malformed >= malformed_before, malformed_before, 0)) AS d_malformed,
            toUInt64(shed - if(shed >= shed_before, shed_before, 0)) AS d_shed,
            toUInt64(failed - if(failed >= failed_before, failed_before, 0)) AS d_failed,
            toUInt64(restart_lost - if(restart_lost >= restart_lost_before, restart_lost_before, 0)) AS d_restart_lost,
            toUInt64(discarded - if(discarded >= discarded_before, discarded_before, 0)) AS d_discarded,
            toUInt64(acked - if(acked >= acked_before, acked_before, 0)) AS d_acked,
            toUInt64(flow_failed - if(flow_failed >= flow_failed_before, flow_failed_before, 0)) AS d_flow_failed,
            toUInt64(0) AS n_expired
        FROM
        (
            SELECT
                ts,
                host,
                kernel_seen AS seen,             lagInFrame(kernel_seen, 1, 0) OVER run AS seen_before,
                kernel_ring_full AS ring_full,   lagInFrame(kernel_ring_full, 1, 0) OVER run AS ring_full_before,
                samples_malformed AS malformed,  lagInFrame(samples_malformed, 1, 0) OVER run AS malformed_before,
                records_shed AS shed,            lagInFrame(records_shed, 1, 0) OVER run AS shed_before,
                records_failed AS failed,        lagInFrame(records_failed, 1, 0) OVER run AS failed_before,
                JSONExtractUInt(raw, 'records_lost_restart') AS restart_lost,
                lagInFrame(JSONExtractUInt(raw, 'records_lost_restart'), 1, 0) OVER run AS restart_lost_before,
                JSONExtractUInt(raw, 'records_discarded') AS discarded,
                lagInFrame(JSONExtractUInt(raw, 'records_discarded'), 1, 0) OVER run AS discarded_before,
                records_acked AS acked,          lagInFrame(records_acked, 1, 0) OVER run AS acked_before,
                JSONExtractUInt(raw, 'kernel_flow_failed') AS flow_failed,
                lagInFrame(JSONExtractUInt(raw, 'kernel_flow_failed'), 1, 0) OVER run AS flow_failed_before
            FROM collector_stats
            WHERE ts < {until:DateTime64(9)}
              AND collector_id GLOBAL IN (SELECT collector_id FROM collector_stats
                                   WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)})
            WINDOW run AS (PARTITION BY host, iface, collector_id ORDER BY ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
        )
        WHERE ts >= {since:DateTime64(9)}

        UNION ALL

        -- Stored rows and the packets they stand for, by the minute of capture.
        SELECT
            toStartOfMinute(toDateTime(ts)) AS minute,
            host,
            toUInt64(0), count(), sum(sample_rate), toUInt64(0),
            toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0)
        FROM packets
        WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)}
        GROUP BY minute, host

        UNION ALL

        -- Exact flow counters, by the minute of export.
        SELECT
            toStartOfMinute(toDateTime(ts)) AS minute,
            host,
            toUInt64(0), toUInt64(0), toUInt64(0), sum(packets),
            toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0)
        FROM flows
        WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)}
        GROUP BY minute, host

        UNION ALL

        -- Kafka records retention deleted unread, by the minute the gap was found, host unknown.
        -- Each gap counts the offsets past the end of every gap before it (by first offset) of
        -- the same topic instance and partition, so overlapping reports count once.
        SELECT
            toStartOfMinute(toDateTime(ts)) AS minute,
            '' AS host,
            toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0),
            toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0),
            toUInt64(greatest(last_offset + 1 - greatest(first_offset, covered_before), 0))
        FROM
        (
            SELECT
                ts, first_offset, last_offset,
                max(last_offset + 1) OVER (PARTITION BY topic, topic_id, `partition` ORDER BY first_offset, last_offset, ts
                                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS covered_before
            FROM ingest_gaps FINAL
            WHERE ts < {until:DateTime64(9)}
        )
        WHERE ts >= {since:DateTime64(9)}
    )
    GROUP BY minute, host
) AS budget
FULL OUTER JOIN
(
    -- Kernel drops after packetlake saw the packets, by the minute of export (sums of deltas).
    SELECT
        minute,
        host,
        sumIf(n, observed = 1) AS kernel_dropped,
        arrayStringConcat(arrayMap(x -> concat(x.1, ' ', toString(x.2)),
            arrayReverseSort(x -> x.2, groupArrayIf((reason, n), observed = 1))), ', ') AS kernel_drop_reasons,
        sumIf(n, observed = 0) AS kernel_dropped_elsewhere
    FROM
    (
        SELECT toStartOfMinute(toDateTime(ts)) AS minute, host, observed, toString(reason) AS reason, sum(packets) AS n
        FROM drops
        WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)}
        GROUP BY minute, host, observed, reason
    )
    GROUP BY minute, host
) AS kernel_drops USING (minute, host)
ORDER BY minute DESC, host
LIMIT {limit:UInt32}
