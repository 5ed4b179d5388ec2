-- Issue 19, passive DNS: the A and AAAA addresses a DNS response answers, so the name asked can
-- be tied to them (table passive_dns, migration 0851). Text, space-separated, filled only for
-- responses with answers: empty elsewhere, so it costs little on disk.
ALTER TABLE {database}.packets
    ADD COLUMN IF NOT EXISTS dns_answer_addrs String AFTER dns_answers;
