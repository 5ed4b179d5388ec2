-- Issue 17: the kernel's exact flow counters key on the innermost packet's flow plus its
-- tunnel_id (VNI, GRE key, ...; bpf/flows.h), so two tenants' identical inner flows are two rows.
-- 0 for traffic that is not tunnelled.
ALTER TABLE {database}.flows
    ADD COLUMN IF NOT EXISTS tunnel_id UInt32 AFTER vlan_id;
