-- Issue 17: the TLS ClientHello's JA4 fingerprint, first ALPN protocol and highest version offered
-- (TLS over TCP and QUIC alike), and the header of QUIC client Initial packets, whose ClientHello
-- the ingester decrypts with the Initial keys (record/l7/quic.go). Filled only for rows the kernel
-- copied a snippet for: empty/0 elsewhere, so the new columns cost little on disk.
ALTER TABLE {database}.packets
    ADD COLUMN IF NOT EXISTS tls_ja4         String                 AFTER tls_sni,
    ADD COLUMN IF NOT EXISTS tls_alpn        LowCardinality(String) AFTER tls_ja4,
    ADD COLUMN IF NOT EXISTS tls_version_max UInt16                 AFTER tls_alpn,
    ADD COLUMN IF NOT EXISTS quic_version    UInt32                 AFTER tls_version_max,
    ADD COLUMN IF NOT EXISTS quic_dcid       String                 AFTER quic_version,
    ADD COLUMN IF NOT EXISTS quic_scid       String                 AFTER quic_dcid;
