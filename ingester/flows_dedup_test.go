package ingester

import (
	"encoding/json"
	"testing"

	"github.com/packetlake/packetlake/internal/testkit/testinfra"
)

// TestFlowMessageStoredOnce: flow messages land on the topic twice, as a collector's re-sent copy
// of a message whose first copy was written after all: once within one batch, and once after the
// ingester that stored them was replaced (a restart: nothing of it is remembered, the copies are
// minutes of offsets apart in production). Each identity (host, collector_id, export_seq, chunk)
// is stored once; messages of collectors from before identities (chunk 0) are stored as they
// come, twice if sent twice.
func TestFlowMessageStoredOnce(t *testing.T) {
	topic, _, group, db := names("flowdup")
	flows := topic + "-flows"
	createTopic(t, topic, 1)
	createTopic(t, flows, 1)
	cfg := testConfig(sharedCH, topic, "", group, db, WriterNative)
	cfg.StatsTopic, cfg.FlowsTopic = "", flows
	cl := producer(t)
	msg := func(seq uint64, chunk uint32, flows int) ([]byte, uint64) {
		b, pk, _ := flowMsg(t, "dup-host", 77, seq, flows)
		var m flowMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		m.Chunk = chunk
		b, err := json.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		return b, pk
	}
	a, pa := msg(1, 1, 30)
	b, pb := msg(1, 2, 20)
	c, pc := msg(2, 1, 10)
	legacy, pl := msg(3, 0, 5)

	produce(t, cl, flows, "dup-host", a, b, a, legacy, legacy)
	ing := startIngester(t, cfg)
	if err := testinfra.WaitCommitted(t.Context(), kafka.Addr(), group, flows); err != nil {
		t.Fatal(err)
	}
	if err := ing.Stop(); err != nil {
		t.Fatal(err)
	}
	first := testutilCounter(ing.metrics.flowDuplicates)

	produce(t, cl, flows, "dup-host", a, c, b)
	ing = startIngester(t, cfg)
	if err := testinfra.WaitCommitted(t.Context(), kafka.Addr(), group, flows); err != nil {
		t.Fatal(err)
	}
	second := testutilCounter(ing.metrics.flowDuplicates)

	conn := chConn(t, sharedCH.TCPAddr())
	want := pa + pb + pc + 2*pl
	got := queryCount(t, conn, "SELECT sum(packets) FROM "+db+".flows")
	perID := queryCount(t, conn, "SELECT count() FROM (SELECT export_seq, chunk, src_addr, src_port FROM "+db+
		".flows WHERE chunk > 0 GROUP BY ALL HAVING count() > 1)")
	t.Logf("flows: %d packets (want %d); duplicates dropped: %v by the first ingester, %v by the second", got, want, first, second)
	if got != want || perID != 0 {
		t.Errorf("flows hold %d packets, want %d; %d flow rows of one message identity stored twice", got, want, perID)
	}
	if first != 1 || second != 2 {
		t.Errorf("duplicates counted %v and %v, want 1 (within a batch) and 2 (after the restart)", first, second)
	}
}
