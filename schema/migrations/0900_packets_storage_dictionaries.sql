-- Issue 18 (storage <= 8.4 B/packet): three changes to packets that store the very same values
-- in fewer bytes. Measured on the shared capture mix (TestStorageBytesPerPacket, 200,610 packets,
-- one part; each lever alone and together in TestStorageLevers, which also checks every row
-- reads back identical): 8.91 -> 8.33 B/packet. Per lever, in B/packet: schema/STORAGE.md.
--
-- * LowCardinality for the L7 strings that repeat from packet to packet: tls_sni 0.254 -> 0.036,
--   tls_ja4 0.158 -> 0.031, dns_qname 0.066 -> 0.011. As String each row keeps its own copy of
--   the name; ZSTD(1) finds only part of the repeats within its window. LowCardinality keeps each
--   distinct name once per part and a small index per row. The writers keep sending String
--   (the ingester's Arrow utf8): ClickHouse builds the dictionary on insert, as it does for host,
--   iface and tls_alpn. Queries and views read LowCardinality(String) as they read String.
-- * ratio_of_defaults_for_sparse_serialization 0.9375 -> 0.8: columns that are empty/zero in at
--   least 80% of a part's rows (dns_id, tos, icmp_type, the tunnel columns) store only their
--   non-default values and where they are: -0.06 B/packet in all.
-- * seq: Delta, ZSTD(3) instead of ZSTD(1): 0.698 -> 0.582. Only seq gains from level 3; ts got
--   worse with it (2.67 -> 2.72) and tcp_seq/tcp_ack did not move.
--
-- What a deployment should expect:
-- * The three type changes are a mutation: ClickHouse rewrites those three columns in every
--   existing part (other columns of a Wide part are hard-linked, a Compact part is rewritten
--   whole), and this ALTER waits until it is done (a MergeTree's ALTER of a column type is
--   synchronous). The three columns are ~0.5 B/packet of ~9, so the rewrite reads and writes
--   ~5% of the table's bytes, but it visits every part: on a table of many TB, apply it when
--   the disk has room for one more copy of those columns and expect minutes to hours.
--   Inserts and SELECTs go on meanwhile (a mutation blocks neither).
-- * The setting and the codec are metadata only: new parts use them at once, old parts when
--   they next merge.
-- * No value changes: LowCardinality is a dictionary encoding of the same strings.
ALTER TABLE {database}.packets
    MODIFY COLUMN IF EXISTS tls_sni   LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN IF EXISTS tls_ja4   LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN IF EXISTS dns_qname LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN IF EXISTS seq       CODEC(Delta, ZSTD(3)),
    MODIFY SETTING ratio_of_defaults_for_sparse_serialization = 0.8;
