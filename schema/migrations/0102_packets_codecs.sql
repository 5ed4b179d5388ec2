-- Codecs of packets for the columns that grow within a conversation. Measured in
-- schema/STORAGE.md (200,600 packets of the shared captures' mix, one part after OPTIMIZE FINAL):
-- 11.7 bytes/packet on disk with the codecs of 0001, 8.4 with these.
--
-- packets sort by (hour, dst_addr, src_addr, ts), so consecutive rows are mostly one direction of
-- one conversation: TCP sequence and acknowledgment numbers and the IPv4 id grow by small steps
-- and the ports repeat. Delta turns them into small numbers (zeros for the ports) that ZSTD packs
-- far better than the raw values, in bytes per packet: tcp_seq 1.90 -> 0.77, tcp_ack 1.76 ->
-- 0.79, ip_id 1.13 -> 0.45, src_port 0.61 -> 0.30, dst_port 0.41 -> 0.18. DoubleDelta and T64
-- were worse on each of these; ZSTD(3) saved under 5% more for more CPU at insert.
-- A codec change is metadata only: new parts use it at once, old parts as they merge.
--
-- Retention of packets is NOT set here: a TTL on capture time also deletes, within seconds, any
-- packet inserted with an old timestamp (replayed captures, backfills). Deployments choose it
-- with ALTER TABLE ... MODIFY TTL, 7 days recommended: see schema/STORAGE.md.
ALTER TABLE {database}.packets
    MODIFY COLUMN IF EXISTS tcp_seq  CODEC(Delta, ZSTD(1)),
    MODIFY COLUMN IF EXISTS tcp_ack  CODEC(Delta, ZSTD(1)),
    MODIFY COLUMN IF EXISTS ip_id    CODEC(Delta, ZSTD(1)),
    MODIFY COLUMN IF EXISTS src_port CODEC(Delta, ZSTD(1)),
    MODIFY COLUMN IF EXISTS dst_port CODEC(Delta, ZSTD(1));
