-- The flow message a row came in is (host, collector_id, export_seq, chunk): chunk is its number
-- within the export (record.FlowMessage.Chunk, from 1; 0 in rows of collectors from before it).
-- A collector sends an unacknowledged message again with the very same bytes, so a message can
-- land in Kafka twice; the ingester looks the identities of a batch up here and stores each
-- message once, however late its second copy comes (ingester/sink_flows.go).
ALTER TABLE {database}.flows ADD COLUMN IF NOT EXISTS chunk UInt32 AFTER export_seq;
