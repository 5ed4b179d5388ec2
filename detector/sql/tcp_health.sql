-- TCP trouble toward one service: a surge of late (retransmitted or out-of-order) data segments, or of zero windows.
--
-- The segments and flow blocks below are those of the tcp_health reports (tshark's
-- analysis of each recorded direction from its own segments: query/TCP_HEALTH.md), over the
-- window; a service is the address:port a direction goes to (it carried the SYN) or comes from
-- (it carried the SYN-ACK; without either, the lower port), and both directions count.
-- late: data segments tshark calls retransmissions or out-of-order. Both, because tshark calls
-- a segment sent again within 3 ms (or one handshake RTT) of the highest one out-of-order, and
-- Linux's fast retransmissions on a short path arrive that soon: they are the loss a LAN shows.
-- Fires when late data segments reach tcp_late_min_rate per second and tcp_late_min_ratio of
-- the service's data segments, or zero-window segments reach tcp_zero_window_min_rate per
-- second. Zero windows count only in flow directions that also advertised an open window: a
-- receiver whose window closed, not a flood of crafted segments that all say 0. Flow directions that lost records to sampling are left out (and counted in
-- flows_sampled): holes would read as loss. score = the larger of the two rates over its
-- threshold.
-- Reads packets, not detect_recent (which lacks sequence numbers and windows): a cycle reads
-- the hour's granules of packets (detector/README.md).
-- The segments block (from "WITH" to the end of "seg"; the same text in every file that reads
-- TCP health, a test holds them equal): one row per recorded TCP segment with tshark's analysis
-- flags, computed per flow direction (host, iface, 5-tuple) from that direction's own segments.
-- packetlake records incoming packets, so each direction is analysed as tshark analyses a
-- capture holding only that direction (query/TCP_HEALTH.md has the rules and what this cannot
-- see). Segments are taken in capture order (ts, then the collector's seq); sequence numbers
-- relative to the flow's first segment (flows of more than 2 GiB per direction within the range
-- are not supported). Segments with a kernel parse error (a cut header) are left out; an L7
-- parse error (a truncated DNS, TLS, HTTP or QUIC payload) leaves the TCP header whole.
WITH
-- 1: one row per recorded TCP segment, numbered within its flow direction in capture order
s1 AS (
    SELECT
        host, iface, src_addr, dst_addr, src_port, dst_port, ts, seq, sample_rate, tcp_flags, tcp_ack, tcp_window, payload_len,
        bitAnd(tcp_flags, 0x02) != 0 AS syn,
        bitAnd(tcp_flags, 0x10) != 0 AS ack,
        bitAnd(tcp_flags, 0x07) != 0 AS syn_fin_rst,
        toUnixTimestamp64Nano(ts) AS t,
        toInt64(toInt32(bitAnd(toInt64(tcp_seq) - toInt64(first_value(tcp_seq) OVER upto), 4294967295))) AS rel,
        rel + payload_len + (bitAnd(tcp_flags, 0x03) != 0) AS seg_end,
        row_number() OVER upto AS n
    FROM packets
    WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)} AND ip_proto = 6
        AND (parse_error = '' OR match(parse_error, '^(dns|tls|http|quic)_'))
    WINDOW upto AS (PARTITION BY host, iface, src_addr, dst_addr, src_port, dst_port ORDER BY ts, seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
-- 2: the state before each segment: highest sequence end so far (tshark's nextseq), previous window and ack
s2 AS (
    SELECT *,
        max(seg_end) OVER before AS next_seq,
        any(tcp_window) OVER prev AS prev_window,
        any(tcp_ack) OVER prev AS prev_ack,
        sum(payload_len) OVER before AS data_before,
        minIf(n, syn AND NOT ack) OVER flow AS syn_n
    FROM s1
    WINDOW
        before AS (PARTITION BY host, iface, src_addr, dst_addr, src_port, dst_port ORDER BY n ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
        prev AS (PARTITION BY host, iface, src_addr, dst_addr, src_port, dst_port ORDER BY n ROWS BETWEEN 1 PRECEDING AND 1 PRECEDING),
        flow AS (PARTITION BY host, iface, src_addr, dst_addr, src_port, dst_port)
),
-- 3: when nextseq last moved, and the first ACK that completes a handshake
s3 AS (
    SELECT *,
        max(if(n = 1 OR seg_end > next_seq, t, 0)) OVER upto AS next_seq_t,
        minIf(n, ack AND NOT syn AND syn_n > 0 AND n > syn_n) OVER flow AS hs_ack_n
    FROM s2
    WINDOW
        upto AS (PARTITION BY host, iface, src_addr, dst_addr, src_port, dst_port ORDER BY n ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
        flow AS (PARTITION BY host, iface, src_addr, dst_addr, src_port, dst_port)
),
s4 AS (
    SELECT *,
        any(next_seq_t) OVER prev AS moved_t,
        maxIf(t, syn AND NOT ack AND n < hs_ack_n) OVER flow AS hs_syn_t,
        anyIf(t, n = hs_ack_n) OVER flow AS hs_ack_t
    FROM s3
    WINDOW
        prev AS (PARTITION BY host, iface, src_addr, dst_addr, src_port, dst_port ORDER BY n ROWS BETWEEN 1 PRECEDING AND 1 PRECEDING),
        flow AS (PARTITION BY host, iface, src_addr, dst_addr, src_port, dst_port)
),
seg AS (
    SELECT *,
        if(hs_ack_n > 0, hs_ack_t - hs_syn_t, -1) AS handshake_rtt_ns,
        n > 1 AND payload_len <= 1 AND rel = next_seq - 1 AND NOT syn_fin_rst AS keep_alive,
        tcp_window = 0 AND NOT syn_fin_rst AS zero_window,
        n > 1 AND payload_len = 0 AND tcp_window != 0 AND tcp_window = prev_window AND rel = next_seq
            AND tcp_ack = prev_ack AND NOT syn_fin_rst AS dup_ack,
        n > 1 AND (payload_len > 0 OR bitAnd(tcp_flags, 0x03) != 0) AND NOT keep_alive AND rel < next_seq AS late,
        late AND t >= moved_t AND t - moved_t < if(hs_ack_n > 0 AND n >= hs_ack_n, handshake_rtt_ns, 3000000) AND next_seq != seg_end AS out_of_order,
        late AND NOT out_of_order AS retransmission,
        bitAnd(tcp_flags, 0x04) != 0 AND data_before > 0 AS reset_after_data
    FROM s4
)
,
-- Per flow direction: counts of the flags, and whether every segment of it was recorded.
flow AS (
    SELECT
        host, iface, src_addr, dst_addr, src_port, dst_port,
        min(ts) AS first_seen,
        max(ts) AS last_seen,
        count() AS segments,
        countIf(payload_len > 0) AS data_segments,
        sum(payload_len) AS payload_bytes,
        countIf(retransmission) AS retransmissions,
        countIf(out_of_order) AS ooo_segments,
        countIf((retransmission OR out_of_order) AND payload_len > 0) AS late_data,
        countIf(dup_ack) AS duplicate_acks,
        countIf(zero_window) AS zero_windows,
        countIf(reset_after_data) AS resets_after_data,
        any(handshake_rtt_ns) AS rtt_ns,
        max(sample_rate) AS max_sample_rate,
        max(tcp_window) AS max_window,
        countIf(syn AND NOT ack) > 0 AS saw_syn,
        countIf(syn AND ack) > 0 AS saw_syn_ack
    FROM seg
    GROUP BY host, iface, src_addr, dst_addr, src_port, dst_port
)
,
by_service AS (
    SELECT *,
        saw_syn OR (NOT saw_syn_ack AND dst_port <= src_port) AS to_service,
        if(to_service, dst_addr, src_addr) AS service_addr,
        if(to_service, dst_port, src_port) AS service_port,
        max_sample_rate > 1 AS sampled,
        late_data > 0 OR (zero_windows > 0 AND max_window > 0) AS troubled,
        if(to_service, src_addr, dst_addr) AS peer_addr
    FROM flow
)
SELECT
    if(position(service, ':') > 0, concat('[', service, ']:', toString(port)), concat(service, ':', toString(port))) AS subject,
    replaceRegexpOne(IPv6NumToString(service_addr), '^::ffff:([0-9.]+)$', '\\1') AS service,
    service_port AS port,
    count() AS flows,
    countIf(sampled) AS flows_sampled,
    sumIf(data_segments, NOT sampled) AS data_segments,
    sumIf(late_data, NOT sampled) AS late_data_segments,
    sumIf(retransmissions, NOT sampled) AS retransmissions,
    sumIf(ooo_segments, NOT sampled) AS out_of_order,
    sumIf(zero_windows, NOT sampled AND max_window > 0) AS zero_windows,
    sumIf(duplicate_acks, NOT sampled) AS duplicate_acks,
    round(late_data_segments / {window_seconds:Float64}, 1) AS late_rate,
    round(if(data_segments = 0, 0, late_data_segments / data_segments), 4) AS late_ratio,
    round(zero_windows / {window_seconds:Float64}, 1) AS zero_window_rate,
    round(greatest(if(late_ratio >= {tcp_late_min_ratio:Float64}, late_rate / {tcp_late_min_rate:Float64}, 0),
             zero_window_rate / {tcp_zero_window_min_rate:Float64}), 2) AS score,
    multiIf(late_rate >= {tcp_late_min_rate:Float64} AND late_ratio >= {tcp_late_min_ratio:Float64}
                AND zero_window_rate >= {tcp_zero_window_min_rate:Float64}, 'late segments and zero windows',
            zero_window_rate >= {tcp_zero_window_min_rate:Float64}, 'zero windows', 'late segments') AS trouble,
    arrayMap(a -> replaceRegexpOne(IPv6NumToString(a), '^::ffff:([0-9.]+)$', '\\1'),
             topKIf(5)(peer_addr, NOT sampled AND troubled)) AS top_peers,
    toUnixTimestamp64Milli(toDateTime64(min(first_seen), 3)) AS window_start_ms,
    toUnixTimestamp64Milli(toDateTime64(max(last_seen), 3)) AS window_end_ms,
    [service] AS addresses
FROM by_service
GROUP BY service_addr, service_port
HAVING (late_rate >= {tcp_late_min_rate:Float64} AND late_ratio >= {tcp_late_min_ratio:Float64})
    OR zero_window_rate >= {tcp_zero_window_min_rate:Float64}
ORDER BY score DESC
LIMIT 1000
