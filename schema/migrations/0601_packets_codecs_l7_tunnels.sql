-- Issue 18 (storage ≤ 8.4 B/packet): the columns of 0400 (TLS/QUIC) and 0500 (tunnels) were
-- added without a codec, so ClickHouse's default LZ4 compressed them; every other column of
-- packets is ZSTD(1) (0001, 0102). They are mostly empty or repeat along a conversation, where
-- ZSTD(1) does better (schema/STORAGE.md has the per-column bytes before and after). A codec
-- change is metadata only: new parts use it at once, old parts when they merge. No information
-- changes.
ALTER TABLE {database}.packets
    MODIFY COLUMN IF EXISTS tls_ja4         CODEC(ZSTD(1)),
    MODIFY COLUMN IF EXISTS tls_alpn        CODEC(ZSTD(1)),
    MODIFY COLUMN IF EXISTS tls_version_max CODEC(ZSTD(1)),
    MODIFY COLUMN IF EXISTS quic_version    CODEC(ZSTD(1)),
    MODIFY COLUMN IF EXISTS quic_dcid       CODEC(ZSTD(1)),
    MODIFY COLUMN IF EXISTS quic_scid       CODEC(ZSTD(1)),
    MODIFY COLUMN IF EXISTS tunnel_type     CODEC(ZSTD(1)),
    MODIFY COLUMN IF EXISTS tunnel_id       CODEC(ZSTD(1)),
    MODIFY COLUMN IF EXISTS tunnel_src      CODEC(ZSTD(1)),
    MODIFY COLUMN IF EXISTS tunnel_dst      CODEC(ZSTD(1)),
    MODIFY COLUMN IF EXISTS tunnel_ttl      CODEC(ZSTD(1)),
    MODIFY COLUMN IF EXISTS tunnel_depth    CODEC(ZSTD(1));
