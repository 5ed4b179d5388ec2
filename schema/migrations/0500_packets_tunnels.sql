-- Issue 17: encapsulations. The kernel records the innermost packet of a VXLAN, Geneve, GRE,
-- ERSPAN, IP-in-IP or MPLS tunnel in the ordinary columns and the encapsulation here
-- (schema/columns.go). Zero/empty for packets that are not tunnelled: they cost little on disk.
ALTER TABLE {database}.packets
    ADD COLUMN IF NOT EXISTS tunnel_type  LowCardinality(String) AFTER payload_len,
    ADD COLUMN IF NOT EXISTS tunnel_id    UInt32                 AFTER tunnel_type,
    ADD COLUMN IF NOT EXISTS tunnel_src   IPv6                   AFTER tunnel_id,
    ADD COLUMN IF NOT EXISTS tunnel_dst   IPv6                   AFTER tunnel_src,
    ADD COLUMN IF NOT EXISTS tunnel_ttl   UInt8                  AFTER tunnel_dst,
    ADD COLUMN IF NOT EXISTS tunnel_depth UInt8                  AFTER tunnel_ttl;
